"""Case 13 of the fault suite, a daemon address whose host name does not resolve: a user script
runs inside a namespace whose resolver points at loopback, where nothing answers (so no DNS
query leaves the machine; the name is under the reserved ``.invalid`` TLD as well). The run must
fail within seconds with an error naming the name and saying it does not resolve, not wait for
a connection that can never come."""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
import time

import pytest

from tests.daemons import ROOT
from tests.faults.tools import FAULT_DEADLINE

NAME = "cascata-no-such-host.invalid"

SCRIPT = textwrap.dedent(
    """
    import sys
    from cascata import Graph
    from tests.faults.ledger import LedgerSink, LedgerSource

    g = Graph()
    g.src = LedgerSource
    g.sink = LedgerSink
    g.src.n < 5
    g.sink.ledger < sys.argv[2]
    g.src.out >> g.sink.x
    g.run(workers=[sys.argv[1]], key_file=sys.argv[3])
    """
)


@pytest.fixture
def loopback_resolver(make_hosts):
    """A namespace host whose /etc/resolv.conf (as ``ip netns exec`` shows it) names 127.0.0.1,
    where nothing listens: every DNS lookup inside fails at once."""
    (host,) = make_hosts(1)
    etc = f"/etc/netns/{host.netns}"
    os.makedirs(etc)
    try:
        with open(f"{etc}/resolv.conf", "w") as f:
            f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        yield host
    finally:
        shutil.rmtree(etc, ignore_errors=True)
        if not os.listdir("/etc/netns"):
            os.rmdir("/etc/netns")


def test_a_daemon_name_that_does_not_resolve_is_a_clear_error_within_seconds(
    loopback_resolver, key_file, tmp_path
):
    host = loopback_resolver
    address = f"{NAME}:7700"
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    started = time.monotonic()
    done = host.run(
        [sys.executable, "-c", SCRIPT, address, str(ledger), key_file],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60,
    )
    elapsed = time.monotonic() - started
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("cascata.errors.AddressError"), done.stderr
    assert NAME in last and "does not resolve" in last, last
    assert elapsed < FAULT_DEADLINE, f"reported after {elapsed:.1f} s"
    print(f"13: name that does not resolve: reported after {elapsed:.2f} s (script start included)")
    assert not os.listdir(ledger), "nothing may have run"


def test_a_name_that_resolves_still_reaches_its_daemon(daemons, key_file, tmp_path):
    """``localhost`` resolves from /etc/hosts: names keep working (no DNS query is made)."""
    from tests.faults.graphs import chain
    from tests.faults.ledger import check

    (d,) = daemons(1)
    port = d.address.rpartition(":")[2]
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    g = chain(str(ledger), 20)
    g.run(workers=[f"localhost:{port}"], key_file=key_file)
    check(ledger, {"p": 20})
