"""Case 6 of the fault suite: the data path between two worker hosts cut while their control
connections stay up. The run either completes with a perfect ledger (ZeroMQ reconnected and
nothing was lost) or fails with a named error within the deadline: never a wrong ledger, never
a hang. Hosts are network namespaces (tests/multihost/netns.py) running real daemons."""

from __future__ import annotations

import os
import select
import subprocess
import sys

import pytest

from cascata import ProtocolError
from cascata._run.coordinator import TRANSIT_TIMEOUT
from cascata.transport.auth import generate_key_file
from tests.daemons import READY_TIMEOUT, ROOT, STOP_TIMEOUT
from tests.faults.graphs import ENDLESS, chain, started
from tests.faults.ledger import Fault, check
from tests.faults.tools import deadline, wait_flag

pytestmark = pytest.mark.slow

PORT = 7700


def _daemon(host, key_file):
    """Start a daemon inside ``host``; return the Popen (its ready line read)."""
    proc = host.popen(
        [sys.executable, "-m", "cascata.worker", "--listen", f"{host.address}:{PORT}",
         "--key-file", key_file, "--processes", "2"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    ready, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT)
    line = proc.stdout.readline() if ready else ""
    assert line.startswith("cascata worker ready on "), line
    return proc


@pytest.fixture
def two_hosts(make_hosts, tmp_path):
    """Two namespace hosts, each running a daemon; yields (hosts, addresses, key file)."""
    key_file = str(tmp_path / "cluster.key")
    generate_key_file(key_file)
    hosts = make_hosts(2)
    procs = []
    try:
        for h in hosts:
            procs.append(_daemon(h, key_file))
        yield hosts, [f"{h.address}:{PORT}" for h in hosts], key_file
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()


def _split_chain(ledger, flags, addresses, n=ENDLESS):
    """src and mid on the first host, sink on the second: mid -> sink crosses between them."""
    g = chain(ledger, n, delay=0.001, faults={"sink": Fault(at=50, flag_dir=flags)})
    pin = {"src": addresses[0], "mid": addresses[0], "sink": addresses[1]}
    return g, pin


def _dirs(tmp_path):
    ledger, flags = tmp_path / "ledger", tmp_path / "flags"
    ledger.mkdir()
    flags.mkdir()
    return str(ledger), str(flags)


def test_data_path_blackholed_between_hosts_is_items_lost_within_the_deadline(two_hosts, tmp_path):
    hosts, addresses, key_file = two_hosts
    ledger, flags = _dirs(tmp_path)
    g, pin = _split_chain(ledger, flags, addresses)
    g.sink.x.capacity = 10  # the producer soon waits for credit that cannot come back
    with started(g, None, workers=addresses, key_file=key_file, pin=pin):
        wait_flag(flags, timeout=60)
        # The producer first fills what the consumer may have in flight, then everything waits.
        with deadline("6: data path blackholed between hosts", bound=TRANSIT_TIMEOUT + 25), pytest.raises(
            ProtocolError, match="items lost in transit"
        ):
            hosts[0].cluster.blackhole(hosts[0], hosts[1])
            g.join()
    hosts[0].cluster.unblackhole()
    _serve_again(tmp_path, addresses, key_file)


def test_data_connection_reset_is_a_perfect_ledger_or_items_lost(two_hosts, tmp_path):
    # ss -K kills the data connection from the first host to the second under the stream:
    # ZeroMQ reconnects, and whatever was in the killed connection's buffers is gone (a PUSH
    # does not resend), so the consumer must notice a gap, or nothing was lost at all.
    hosts, addresses, key_file = two_hosts
    ledger, flags = _dirs(tmp_path)
    n = 3000
    g, pin = _split_chain(ledger, flags, addresses, n=n)
    with started(g, None, workers=addresses, key_file=key_file, pin=pin):
        wait_flag(flags, timeout=60)
        with deadline("6: data connection reset (ss -K)", bound=TRANSIT_TIMEOUT + 25):
            killed = hosts[0].run(["ss", "-K", "dst", hosts[1].address])
            assert killed.returncode == 0, killed.stderr
            try:
                g.join()
            except ProtocolError as exc:
                assert "lost" in str(exc)
            else:
                check(ledger, {"p": n})
    _serve_again(tmp_path, addresses, key_file)


def _serve_again(tmp_path, addresses, key_file):
    ledger = tmp_path / "again"
    ledger.mkdir()
    g = chain(str(ledger), 100)
    g.run(workers=addresses, key_file=key_file, pin={"src": addresses[0], "sink": addresses[1]})
    check(ledger, {"p": 100})
