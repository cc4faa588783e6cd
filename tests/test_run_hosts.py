"""Runs on cascata worker daemons (real subprocesses on loopback ports, CurveZMQ, real kills)."""

from __future__ import annotations

import asyncio
import glob
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time

import psutil
import pytest

from cascata import (
    AddressError,
    AuthenticationError,
    ComponentError,
    Graph,
    GraphError,
    HostLostError,
    PlanRefusedError,
    SerializationError,
    component,
    inport,
    log,
    outport,
    persist,
)
from cascata.transport.auth import generate_key_file
from tests.components import Source
from tests.daemons import ROOT
from tests.helpers import poll_for

pytestmark = pytest.mark.slow


@component
@inport("x")
@outport("out")
async def WhereAmI(x, out):
    """Sends (x, the pid of the process that started this worker: the daemon's fork server)."""
    await out.send((x, os.getppid()))


@component
@inport("x")
@outport("out")
async def Slow(x, out):
    await asyncio.sleep(0.01)
    await out.send(x)


@component
@inport("x")
async def Fails(x):
    if x == 3:
        raise RuntimeError("item three is bad")


@component
@inport("x")
async def Logs(x):
    if x == 0:
        log.info("hello from a daemon")


@component
@inport("x")
async def LogsDebug(x):
    if x == 0:
        log.debug("debug from a daemon")


def pipeline(middle, n=200):
    g = Graph()
    g.src = Source
    g.mid = middle
    g.src.n < n
    g.src.out >> g.mid.x
    return g


def test_a_graph_over_two_daemons_delivers_every_item_from_both_hosts(daemons, key_file):
    a, b = daemons(2)
    g = Graph()
    g.src = Source
    g.ws = WhereAmI * 4
    g.src.n < 400
    g.src.out >> g.ws.x
    items = g.collect(g.ws.out)
    report = g.run(workers=[a.address, b.address], key_file=key_file)
    assert sorted(x for x, _ in items) == list(range(400))
    # group members on both hosts (a daemon's workers are children of its fork server)
    assert {ppid for _, ppid in items} == {a.fork_server().pid, b.fork_server().pid}
    assert {w.host for w in report.workers.values()} == {a.address, b.address}
    assert {w.hostname for w in report.workers.values()} == {os.uname().nodename}
    poll_for(lambda: not a.workers() and not b.workers())


def test_environment_variables_name_the_workers_and_the_key(daemons, key_file, monkeypatch):
    (a,) = daemons(1)
    monkeypatch.setenv("CASCATA_WORKERS", a.address)
    monkeypatch.setenv("CASCATA_KEY_FILE", key_file)
    g = pipeline(WhereAmI, 50)
    items = g.collect(g.mid.out)
    g.run()
    assert sorted(items) == [(i, a.fork_server().pid) for i in range(50)]


def test_a_wrong_key_is_an_authentication_error_naming_the_daemon(daemons, tmp_path):
    (a,) = daemons(1)
    other = tmp_path / "other.key"
    generate_key_file(other)
    g = pipeline(WhereAmI, 5)
    started = time.monotonic()
    with pytest.raises(AuthenticationError, match=a.address):
        g.run(workers=[a.address], key_file=str(other))
    assert time.monotonic() - started < 10
    assert not a.workers()


def test_a_component_error_on_a_daemon_names_the_component_and_the_host(daemons, key_file):
    (a,) = daemons(1)
    g = pipeline(Fails, 10)
    with pytest.raises(ComponentError, match="item three is bad") as info:
        g.run(workers=[a.address], key_file=key_file)
    assert "mid@Fails" in str(info.value) and a.address in info.value.worker
    poll_for(lambda: not a.workers())


def test_log_lines_from_a_daemon_reach_the_caller_tagged_with_the_host(daemons, key_file, capfd):
    (a,) = daemons(1)
    g = pipeline(Logs, 3)
    g.run(workers=[a.address], key_file=key_file)
    err = capfd.readouterr().err
    assert f"mid@Logs: [{a.address}] hello from a daemon" in err


def test_the_callers_log_level_reaches_workers_on_a_daemon(daemons, key_file, capfd):
    (a,) = daemons(1)
    level = log.level
    log.setLevel("DEBUG")  # the daemon's own configuration says INFO: the caller's level wins
    try:
        pipeline(LogsDebug, 3).run(workers=[a.address], key_file=key_file)
    finally:
        log.setLevel(level)
    assert f"mid@LogsDebug: [{a.address}] debug from a daemon" in capfd.readouterr().err


@component
@inport("x")
async def Prints(x):
    print(f"item {x}")
    print(f"warning {x}", file=sys.stderr)
    if x == 4:
        print("no newline at the end", end="")
        raise ValueError("printed first")


def test_what_a_component_on_a_daemon_prints_reaches_the_caller_tagged_with_the_host(
    daemons, key_file, capfd
):
    (a,) = daemons(1)
    g = pipeline(Prints, 4)
    g.run(workers=[a.address], key_file=key_file)
    out, err = capfd.readouterr()
    assert out.splitlines() == [f"[{a.address}] item {i}" for i in range(4)]
    assert [x for x in err.splitlines() if "warning" in x] == [
        f"[{a.address}] warning {i}" for i in range(4)
    ]
    # Not on the daemon's own stdout (a pipe its workers inherit), where it went before.
    fd = a.proc.stdout.fileno()
    os.set_blocking(fd, False)
    try:
        leaked = os.read(fd, 1 << 16).decode()
    except BlockingIOError:
        leaked = ""
    assert "item" not in leaked and "item 0" not in a.stderr()
    g = pipeline(Prints, 10)
    with pytest.raises(ComponentError, match="printed first"):
        g.run(workers=[a.address], key_file=key_file)
    out = capfd.readouterr().out
    assert out.splitlines()[-2:] == [f"[{a.address}] item 4", f"[{a.address}] no newline at the end"]


def test_a_host_killed_mid_run_is_host_lost_naming_it_and_the_other_host_serves_again(
    daemons, key_file
):
    a, b = daemons(2)
    g = Graph()
    g.src = Source
    g.ws = Slow * 4
    g.src.n < 100_000
    g.src.out >> g.ws.x
    g.start(workers=[a.address, b.address], key_file=key_file)
    poll_for(lambda: len(a.workers()) == 2 and len(b.workers()) == 2, timeout=30)
    time.sleep(0.5)
    killed = time.monotonic()
    # The machine died: the daemon first, then its fork server and workers, so nothing is left
    # to report a worker's end (a worker killed first is reported at once: WorkerLostError).
    doomed = [*b.workers(), b.fork_server()]
    b.signal(signal.SIGKILL)
    for p in doomed:
        p.kill()
    with pytest.raises(HostLostError, match=b.address) as info:
        g.join()
    # host_timeout (3 s), and no wait for the lost daemon to confirm its workers stopped
    assert time.monotonic() - killed < 6
    assert info.value.address == b.address
    poll_for(lambda: not a.workers())
    g2 = pipeline(WhereAmI, 20)
    items = g2.collect(g2.mid.out)
    g2.run(workers=[a.address], key_file=key_file)
    assert len(items) == 20


def test_a_host_that_falls_silent_is_host_lost_within_seconds(daemons, key_file):
    (a,) = daemons(1)
    g = pipeline(Slow, 100_000)
    g.start(workers=[a.address], key_file=key_file)
    poll_for(lambda: len(a.workers()) >= 1, timeout=30)
    time.sleep(0.5)
    frozen = time.monotonic()
    for p in a.workers():
        p.suspend()
    a.signal(signal.SIGSTOP)  # no exit, no reset: silence, as when the network is cut
    try:
        with pytest.raises(HostLostError, match=a.address):
            g.join()
        assert time.monotonic() - frozen < 6
    finally:
        a.signal(signal.SIGCONT)
        for p in a.workers():
            p.resume()


COORDINATOR = """
import sys
sys.path.insert(0, {root!r})
from cascata import Graph
from tests.test_run_hosts import Slow
from tests.components import Source
g = Graph()
g.src = Source
g.mid = Slow
g.src.n < 100_000
g.src.out >> g.mid.x
g.run(workers=[{address!r}], key_file={key!r})
"""


def test_when_the_coordinator_dies_its_remote_workers_exit_and_the_daemon_serves_on(
    daemons, key_file, tmp_path
):
    (a,) = daemons(1)
    script = tmp_path / "coordinator.py"
    script.write_text(COORDINATOR.format(root=str(ROOT), address=a.address, key=key_file))
    proc = subprocess.Popen([sys.executable, str(script)])
    try:
        poll_for(lambda: len(a.workers()) == 2, timeout=30)
        time.sleep(0.5)
        proc.kill()
        proc.wait()
        killed = time.monotonic()
        poll_for(lambda: not a.workers(), timeout=15)
        assert time.monotonic() - killed < 10
        assert not glob.glob(os.path.join(tempfile.gettempdir(), f"cascata-run-{proc.pid}-*"))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    g = pipeline(WhereAmI, 20)
    items = g.collect(g.mid.out)
    g.run(workers=[a.address], key_file=key_file)
    assert len(items) == 20


def test_a_module_missing_on_the_host_is_named_before_the_run_starts(daemons, key_file, tmp_path):
    (a,) = daemons(1)
    extra = tmp_path / "only_here"
    extra.mkdir()
    (extra / "hosts_only_helper.py").write_text("def triple(x):\n    return 3 * x\n")
    sys.path.insert(0, str(extra))
    try:
        import hosts_only_helper

        @component
        @inport("x")
        async def UsesHelper(x):
            hosts_only_helper.triple(x)

        g = pipeline(UsesHelper, 5)
        with pytest.raises(PlanRefusedError, match="hosts_only_helper") as info:
            g.run(workers=[a.address], key_file=key_file)
        assert info.value.address == a.address
    finally:
        sys.path.remove(str(extra))
        sys.modules.pop("hosts_only_helper", None)
    poll_for(lambda: not a.workers())


@component
@inport("x")
@outport("out")
async def Where(x, out):
    """Sends (x, the pid of the process that started this worker)."""
    await out.send((x, os.getppid()))


def test_local_workers_and_a_daemon_serve_one_run_with_pins(daemons, key_file):
    (a,) = daemons(1)
    g = Graph()
    g.src = Source
    g.ws = WhereAmI * 2
    g.sink = Where
    g.src.n < 300
    g.src.out >> g.ws.x
    g.ws.out >> g.sink.x
    items = g.collect(g.sink.out)
    g.run(workers=["local", a.address], key_file=key_file,
          pin={"ws": a.address, "sink": "local", "src": "local"})
    assert sorted((x, ws_host) for (x, ws_host), _ in items) == [
        (i, a.fork_server().pid) for i in range(300)
    ]
    assert {sink_host for _, sink_host in items} == {os.getpid()}  # forked here: local


@component
@inport("x")
@persist("queue", lambda q: q)
async def ToQueue(x, queue):
    queue.get().put(x)


def _queue_sink(n):
    g = Graph()
    g.src = Source
    g.sink = ToQueue
    g.src.n < n
    g.src.out >> g.sink.x
    queue = multiprocessing.Queue()
    g.sink.queue < queue
    return g, queue


def test_a_component_holding_a_queue_cannot_go_to_a_daemon_and_the_error_says_pin_it_local(
    daemons, key_file
):
    (a,) = daemons(1)
    g, _ = _queue_sink(5)
    with pytest.raises(SerializationError) as info:
        g.run(workers=[a.address], key_file=key_file)
    assert info.value.component == "sink@ToQueue" and info.value.item_type == "Queue"
    message = str(info.value)
    assert f"cannot travel to host {a.address}: persist 'queue' holds a Queue" in message
    assert "pin {'sink': 'local'}" in message
    poll_for(lambda: not a.workers())


def test_only_the_daemons_own_components_travel_so_a_local_sink_may_hold_a_queue(daemons, key_file):
    (a,) = daemons(1)
    g, queue = _queue_sink(50)
    g.run(workers=[a.address, "local"], key_file=key_file, pin={"src": a.address, "sink": "local"})
    assert sorted(queue.get(timeout=5) for _ in range(50)) == list(range(50))


def test_a_pin_to_a_host_the_run_lacks_or_to_an_unknown_component_fails_before_starting():
    g = pipeline(WhereAmI, 5)
    with pytest.raises(ValueError, match="'mid' on '10.9.9.9:7700', which this run does not have"):
        g.run(pin={"mid": "10.9.9.9:7700"})
    with pytest.raises(GraphError, match="pin names 'nope'"):
        g.run(pin={"nope": "local"})


def test_running_on_hosts_without_a_key_says_how_to_get_one(monkeypatch):
    monkeypatch.delenv("CASCATA_KEY_FILE", raising=False)
    g = pipeline(WhereAmI, 5)
    with pytest.raises(ValueError, match="cascata keygen"):
        g.run(workers=["127.0.0.1:7"])


def test_a_malformed_worker_address_is_an_address_error():
    g = pipeline(WhereAmI, 5)
    with pytest.raises(ValueError, match="HOST:PORT"):
        g.run(workers=["nonsense"], key_file="/nonexistent")



def test_the_two_hosts_example_runs_as_a_script_with_its_code_travelling_by_value(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "two_hosts.py")], capture_output=True, text=True,
        timeout=90, cwd=tmp_path,  # not the repository: __main__'s components travel by value
    )
    assert out.returncode == 0, out.stderr
    assert "1000 squares, sum 332833500, computed under 2 daemons" in out.stdout


def test_a_remote_worker_busy_in_a_long_c_call_is_busy_not_frozen(daemons, key_file):
    from tests.test_run_liveness import SortBig

    (a,) = daemons(1)
    g = Graph()
    g.src = Source
    g.sort = SortBig
    g.src.n < 1
    g.sort.n < 2_000_000  # 1.5-2 s of sorting holding the GIL: the heartbeat thread is silent
    g.src.out >> g.sort.x
    items = g.collect(g.sort.out)
    g.run(workers=[a.address], key_file=key_file, liveness_timeout=1.0)
    assert items == [0]


def test_workers_of_one_daemon_exchange_items_over_ipc(daemons, key_file):
    (a,) = daemons(1)
    g = pipeline(Slow, 400)  # src on worker 0, mid on worker 1: both on this daemon; 4 s or more
    items = g.collect(g.mid.out)

    def ipc_data_sockets():
        names = set()
        for p in a.workers():
            try:
                names |= {os.path.basename(c.laddr) for c in p.net_connections("unix") if c.laddr}
            except psutil.NoSuchProcess:
                pass
        return names

    g.start(workers=[a.address], key_file=key_file)
    try:
        assert poll_for(lambda: {"d0", "d1"} <= ipc_data_sockets(), timeout=30)
    finally:
        g.join()
    assert sorted(items) == list(range(400))


def test_a_daemon_address_where_nothing_listens_is_an_address_error_saying_so(key_file):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: connections there are refused
    g = pipeline(WhereAmI, 5)
    with pytest.raises(AddressError) as info:
        g.run(workers=[f"127.0.0.1:{port}"], key_file=key_file)
    assert info.value.address == f"127.0.0.1:{port}"
    assert "nothing accepts connections there" in str(info.value)


def test_a_daemon_on_an_ipv6_address_serves_a_run_next_to_one_on_ipv4(key_file):
    from tests.daemons import DaemonProcess

    six = DaemonProcess(key_file, listen="[::1]:0")
    four = DaemonProcess(key_file)
    try:
        assert six.address.startswith("[::1]:")  # printed so that it can be copied back
        g = pipeline(WhereAmI, 100)
        items = g.collect(g.mid.out)
        g.run(workers=[six.address, four.address], key_file=key_file,
              pin={"src": six.address, "mid": four.address})
        assert sorted(x for x, _ in items) == list(range(100))
        assert {ppid for _, ppid in items} == {four.fork_server().pid}
    finally:
        six.stop()
        four.stop()


def test_daemons_on_one_machine_get_no_more_workers_than_its_cpus_unless_asked(daemons, key_file):
    from cascata._run.placement import available_cpus

    a, b = daemons(2, processes=None)  # both on this machine, each offering its CPUs
    g = Graph()
    g.src = Source
    g.mids = Slow * 6
    g.src.n < 60
    g.src.out >> g.mids.x
    items = g.collect(g.mids.out)
    report = g.run(workers=[a.address, b.address], key_file=key_file)
    assert sorted(items) == list(range(60))
    assert len(report.workers) == max(2, min(available_cpus(), 7))
    report = g.run(3, workers=[a.address, b.address], key_file=key_file)  # asked: as many
    assert len(report.workers) == 3
    assert {w.host for w in report.workers.values()} == {a.address, b.address}
    c, d = daemons(2, processes=4)  # the operator fixed the processes: they stand
    report = g.run(workers=[c.address, d.address], key_file=key_file)
    assert len(report.workers) >= 6  # one per component (src and a member share one)

