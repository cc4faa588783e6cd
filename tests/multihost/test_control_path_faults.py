"""The caller's control connection to a daemon reset under a run (``ss -K`` in the root namespace,
where the caller runs). ZeroMQ reconnects without a word, and whatever the killed connection held
is gone: an END_ALL, a DONE or an EXITED lost that way once made a run end in a DeadlockError
listing nothing (found by the chaos loop). Control records carry no sequence numbers, so a broken
control connection must end the run as a HostLostError naming the daemon, within seconds; the
daemon stops the run's workers and serves the next run."""

from __future__ import annotations

import subprocess

import pytest

from cascata import HostLostError
from tests.faults.graphs import ENDLESS, chain, started
from tests.faults.ledger import Fault, check
from tests.faults.tools import deadline, wait_flag
from tests.helpers import poll_for

pytestmark = pytest.mark.slow


def _dirs(tmp_path):
    ledger, flags = tmp_path / "ledger", tmp_path / "flags"
    ledger.mkdir()
    flags.mkdir()
    return str(ledger), str(flags)


def test_a_reset_control_connection_is_host_lost_naming_the_daemon(
    make_hosts, host_daemons, key_file, tmp_path
):
    (host,) = make_hosts(1)
    (d,) = host_daemons([host], processes=3)
    ledger, flags = _dirs(tmp_path)
    g = chain(ledger, ENDLESS, delay=0.001, faults={"sink": Fault(at=50, flag_dir=flags)})
    with started(g, None, workers=[d.address], key_file=key_file, timeout=30) as run:
        wait_flag(flags, timeout=30)
        port = d.address.rpartition(":")[2]
        with deadline("control connection to a daemon reset (ss -K)"), pytest.raises(
            HostLostError
        ) as info:
            killed = subprocess.run(["ss", "-K", "dst", host.address, "dport", "=", f":{port}"],
                                    capture_output=True, text=True, timeout=30)
            assert killed.returncode == 0 and len(killed.stdout.splitlines()) > 1, killed
            run.join()
    assert info.value.address == d.address and "connection" in info.value.cause, info.value
    poll_for(lambda: set(host.pids()) <= d.service_pids(), timeout=10)
    again = tmp_path / "again"
    again.mkdir()
    chain(str(again), 100).run(workers=[d.address], key_file=key_file)
    check(again, {"p": 100})
