"""Runs over hosts made of network namespaces: real daemons, real TCP with CurveZMQ between
namespaces, real faults (kill -9, a link taken down). The coordinator is this test process, in the
root namespace, which reaches every host over the bridge."""

from __future__ import annotations

import sys
import time

import psutil
import pytest
import zmq

from cascata import AuthenticationError, Graph, HostLostError, PlanRefusedError, component, inport
from cascata.transport import control
from cascata.transport.auth import HandshakeWatch, generate_key_file, load_key
from cascata.worker.session import versions
from tests.daemons import ROOT, record_launches
from tests.helpers import poll_for
from tests.multihost.parts import Arrays, Check, Hop, SlowHop, Start, netns_inode
from tests.worker.test_daemon import RawPeer

pytestmark = pytest.mark.slow

# Items in a run that must finish.
N = 300
# Seconds within which a lost host must be reported (HOST_TIMEOUT is 3 s; a busy machine).
DETECTION_LIMIT = 10.0
# Seconds a CurveZMQ handshake gets between namespaces.
HANDSHAKE_LIMIT = 5.0


def report_time(what, started):
    """Print how long detection took (pytest -s shows it) and hold it to DETECTION_LIMIT."""
    took = time.monotonic() - started
    print(f"\ndetected {what} in {took:.2f} s")
    assert took < DETECTION_LIMIT


def run_small(address, key_file, *more):
    """A short run on the given daemons; returns the sorted item numbers that arrived."""
    g, items = chain(20, hops=1)
    g.run(workers=[address, *more], key_file=key_file)
    return sorted(i for i, _ in items)


def chain(n, hops=3, hop=Hop):
    """src -> hop1 -> ... -> hopN, collecting the last hop's items (i, path of netns inodes)."""
    g = Graph()
    g.src = Start
    g.src.n < n
    prev = g.src.out
    for k in range(1, hops + 1):
        setattr(g, f"hop{k}", hop)
        stage = getattr(g, f"hop{k}")
        prev >> stage.x
        prev = stage.out
    return g, g.collect(prev)


def test_a_graph_over_two_hosts_delivers_every_item_each_component_in_its_host(
    make_hosts, host_daemons, key_file
):
    a, b = make_hosts(2)
    da, db = host_daemons([a, b])
    g, items = chain(N)
    pin = {"src": da.address, "hop1": db.address, "hop2": da.address, "hop3": db.address}
    g.run(workers=[da.address, db.address], key_file=key_file, pin=pin)
    assert sorted(i for i, _ in items) == list(range(N))
    a_ns, b_ns = a.netns_inode, b.netns_inode
    assert {tuple(path) for _, path in items} == {(a_ns, b_ns, a_ns, b_ns)}  # three crossings


def test_a_chain_placed_by_cascata_crosses_from_host_to_host_once(make_hosts, host_daemons, key_file):
    a, b = make_hosts(2)
    da, db = host_daemons([a, b])
    g, items = chain(N)
    report = g.run(workers=[da.address, db.address], key_file=key_file)
    assert sorted(i for i, _ in items) == list(range(N))
    # four stages on 2 x 2 processes: two on each host, one crossing, every worker used
    a_ns, b_ns = a.netns_inode, b.netns_inode
    assert {tuple(path) for _, path in items} == {(a_ns, a_ns, b_ns, b_ns)}
    assert len(report.workers) == 4


def test_a_group_spreads_over_both_hosts(make_hosts, host_daemons, key_file):
    a, b = make_hosts(2)
    da, db = host_daemons([a, b])
    g = Graph()
    g.src = Start
    g.ws = Hop * 4
    g.src.n < N
    g.src.out >> g.ws.x
    items = g.collect(g.ws.out)
    g.run(workers=[da.address, db.address], key_file=key_file)
    assert sorted(i for i, _ in items) == list(range(N))
    assert {path[-1] for _, path in items} == {a.netns_inode, b.netns_inode}


def test_local_workers_and_a_host_with_a_pinned_sink(make_hosts, host_daemons, key_file):
    (a,) = make_hosts(1)
    (da,) = host_daemons([a])
    g, items = chain(N, hops=2)
    g.run(workers=["local", da.address], key_file=key_file,
          pin={"src": da.address, "hop1": da.address, "hop2": "local"})
    here = netns_inode()
    assert sorted(i for i, _ in items) == list(range(N))
    assert {tuple(path) for _, path in items} == {(a.netns_inode, a.netns_inode, here)}


def test_8_mb_arrays_cross_hosts_intact_and_quietly(make_hosts, host_daemons, key_file, capfd):
    a, b = make_hosts(2)
    da, db = host_daemons([a, b])
    g = Graph()
    g.arrays = Arrays
    g.check = Check
    g.arrays.n < 20
    g.arrays.out >> g.check.a
    got = g.collect(g.check.out)
    g.run(workers=[da.address, db.address], key_file=key_file,
          pin={"arrays": da.address, "check": db.address})
    assert sorted(got) == [(float(i), True, 1_000_000, b.netns_inode) for i in range(20)]
    err = capfd.readouterr().err
    assert "Traceback" not in err and "ERROR" not in err, err  # a successful run says nothing


# --- keys -----------------------------------------------------------------------------------------


def test_a_wrong_key_fails_within_seconds_naming_the_daemon(make_hosts, host_daemons, tmp_path):
    (a,) = make_hosts(1)
    (da,) = host_daemons([a])
    other = tmp_path / "other.key"
    generate_key_file(other)
    g, _ = chain(5, hops=1)
    started = time.monotonic()
    with pytest.raises(AuthenticationError, match=da.address) as info:
        g.run(workers=[da.address], key_file=str(other))
    report_time("wrong key", started)
    assert info.value.address == da.address
    assert other.read_text().strip() not in str(info.value)
    assert not da.workers() and da.proc.poll() is None


def test_the_server_key_with_a_bogus_client_key_is_refused_by_the_allow_list(
    make_hosts, host_daemons, key_file
):
    (a,) = make_hosts(1)
    (da,) = host_daemons([a])
    key = load_key(key_file)
    public, secret = zmq.curve_keypair()
    ctx = zmq.Context()
    try:
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.curve_serverkey = key.server_public  # known to anyone who watched a handshake
        sock.curve_publickey, sock.curve_secretkey = public, secret
        with HandshakeWatch(sock, da.address) as watch:
            sock.connect(f"tcp://{da.address}")
            sock.send(b"\x00 no plan for you")
            with pytest.raises(AuthenticationError, match="refused this machine's key"):
                watch.wait(HANDSHAKE_LIMIT)
        sock.close()
    finally:
        ctx.term()
    assert "refused a connection" in da.stderr()  # the daemon's authenticator said no
    assert run_small(da.address, key_file) == list(range(20))  # and it serves the cluster


# --- lost hosts -----------------------------------------------------------------------------------


def spread(da, db, key_file):
    """A long run whose group has members on both hosts."""
    g = Graph()
    g.src = Start
    g.ws = SlowHop * 4
    g.src.n < 100_000
    g.src.out >> g.ws.x
    g.start(workers=[da.address, db.address], key_file=key_file)
    poll_for(lambda: len(da.workers()) == 2 and len(db.workers()) == 2, timeout=30)
    time.sleep(0.5)  # items flowing
    return g


def test_a_host_killed_mid_run_is_host_lost_within_seconds(make_hosts, host_daemons, key_file):
    a, b = make_hosts(2)
    da, db = host_daemons([a, b])
    g = spread(da, db, key_file)
    started = time.monotonic()
    for pid in b.pids():  # the daemon and its workers, all at once: the machine died
        b.kill(pid)
    with pytest.raises(HostLostError, match=db.address) as info:
        g.join()
    report_time("host killed", started)
    assert info.value.address == db.address
    poll_for(lambda: not da.workers(), timeout=DETECTION_LIMIT)  # the other host's workers stop
    assert run_small(da.address, key_file) == list(range(20))  # and it serves the next plan


def test_a_host_cut_silently_is_host_lost_within_seconds(make_hosts, host_daemons, key_file):
    a, b = make_hosts(2)
    da, db = host_daemons([a, b])
    g = spread(da, db, key_file)
    started = time.monotonic()
    b.cut()  # no reset, no error: its packets vanish
    with pytest.raises(HostLostError, match=db.address):
        g.join()
    report_time("host cut", started)
    poll_for(lambda: not da.workers(), timeout=DETECTION_LIMIT)
    # Cut off, the daemon hears no coordinator: it stops that plan's workers on its own.
    poll_for(lambda: not db.workers(), timeout=DETECTION_LIMIT)
    b.restore()
    assert da.proc.poll() is None and db.proc.poll() is None
    assert run_small(db.address, key_file) == list(range(20))


COORDINATOR = """
import sys
sys.path.insert(0, {root!r})
from cascata import Graph
from tests.multihost.parts import SlowHop, Start
g = Graph()
g.src = Start
g.hop = SlowHop * 2
g.src.n < 100_000
g.src.out >> g.hop.x
g.run(workers=[{address!r}], key_file={key!r})
"""


def test_when_the_coordinator_dies_the_remote_workers_exit_and_the_daemon_serves_on(
    make_hosts, host_daemons, key_file, tmp_path
):
    a, c = make_hosts(2)  # c is the coordinator's machine
    (da,) = host_daemons([a])
    script = tmp_path / "coordinator.py"
    script.write_text(COORDINATOR.format(root=str(ROOT), address=da.address, key=key_file))
    coordinator = c.popen([sys.executable, str(script)])
    poll_for(lambda: len(da.workers()) == 2, timeout=30)
    time.sleep(0.5)
    c.kill(coordinator)
    started = time.monotonic()
    poll_for(lambda: not da.workers(), timeout=DETECTION_LIMIT)
    report_time("coordinator killed (remote workers gone)", started)
    assert da.proc.poll() is None
    assert run_small(da.address, key_file) == list(range(20))


# --- a robust daemon ------------------------------------------------------------------------------


def test_garbage_from_another_host_then_a_valid_plan(make_hosts, host_daemons, key_file):
    a, c = make_hosts(2)
    (da,) = host_daemons([a])
    host, port = da.address.split(":")
    done = c.run([sys.executable, "-c", GARBAGE, host, port])  # plain TCP, no handshake at all
    assert done.returncode == 0, done.stderr
    peer = RawPeer(da.address, key_file)  # authenticated, but speaking nonsense
    try:
        peer.send(b"\xc1\xc1 not msgpack")
        assert "malformed" in peer.record().reason
        peer.send(control.Hello("3.11", "x", "y", False).encode()[:-3])  # truncated
        assert "malformed" in peer.record().reason
    finally:
        peer.close()
    assert run_small(da.address, key_file) == list(range(20))
    assert da.proc.poll() is None


GARBAGE = """
import os, socket, sys
for payload in (os.urandom(4096), b"\\xff" * 10 + b"\\x7f" + b"\\x00" * 100, b"GET / HTTP/1.0\\r\\n\\r\\n"):
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as s:
        s.sendall(payload)
"""


def test_a_module_missing_on_the_host_is_named(make_hosts, host_daemons, key_file, tmp_path):
    (a,) = make_hosts(1)
    (da,) = host_daemons([a])
    extra = tmp_path / "only_on_the_caller"
    extra.mkdir()
    (extra / "caller_only_helper.py").write_text("def triple(x):\n    return 3 * x\n")
    sys.path.insert(0, str(extra))
    try:
        import caller_only_helper

        @component
        @inport("x")
        async def Triple(x):  # travels by value; the module it calls stays behind
            caller_only_helper.triple(x[0])

        g = Graph()
        g.src = Start
        g.triple = Triple
        g.src.n < 5
        g.src.out >> g.triple.x
        with pytest.raises(PlanRefusedError, match="caller_only_helper") as info:
            g.run(workers=[da.address], key_file=key_file)
        assert info.value.address == da.address
    finally:
        sys.path.remove(str(extra))
        sys.modules.pop("caller_only_helper", None)
    poll_for(lambda: not da.workers())
    assert run_small(da.address, key_file) == list(range(20))


# A daemon that reports another cascata version (the real daemon, its version function patched).
OTHER_VERSION = [sys.executable, "-c", (
    "import cascata.worker.daemon as d; real = d.versions; "
    "d.versions = lambda: (real()[0], '0.0.0+other', real()[2]); "
    "from cascata.cli import worker_main; worker_main()")]


def test_a_version_mismatch_is_named_with_both_versions(make_hosts, host_daemons, key_file):
    (a,) = make_hosts(1)
    (da,) = host_daemons([a], python=OTHER_VERSION)
    g, _ = chain(5, hops=1)
    with pytest.raises(PlanRefusedError) as info:
        g.run(workers=[da.address], key_file=key_file)
    assert f"cascata {versions()[1]} there" in str(info.value)
    assert "0.0.0+other here" in str(info.value)
    assert info.value.address == da.address


def test_a_recorded_plan_replayed_to_the_daemon_is_refused(make_hosts, host_daemons, key_file, monkeypatch):
    (a,) = make_hosts(1)
    (da,) = host_daemons([a])
    sent = record_launches(monkeypatch)
    assert run_small(da.address, key_file) == list(range(20))
    assert len(sent) == 1
    poll_for(lambda: not da.workers())
    peer = RawPeer(da.address, key_file)  # one who holds the key and captured the plan
    try:
        py, ver, dill_ver = versions()
        peer.send(control.Hello(py, ver, dill_ver, False).encode())
        assert isinstance(peer.record(), control.Welcome)
        peer.send(sent[0])
        refused = peer.record()
        assert isinstance(refused, control.Refused) and "replayed" in refused.reason
    finally:
        peer.close()
    assert not da.workers()


@pytest.mark.timeout(180)
def test_twenty_plans_in_a_row_do_not_grow_the_daemon(make_hosts, host_daemons, key_file):
    (a,) = make_hosts(1)
    (da,) = host_daemons([a], processes=1)
    proc = psutil.Process(da.pid)

    def state():
        poll_for(lambda: not da.workers())
        return proc.num_fds(), proc.num_threads(), proc.memory_info().rss

    for _ in range(2):  # warm up: imports, caches, first allocations
        run_small(da.address, key_file)
    fds, threads, rss = state()
    for _ in range(20):
        assert run_small(da.address, key_file) == list(range(20))
    fds_after, threads_after, rss_after = state()
    print(f"\n20 plans: fds {fds} -> {fds_after}, threads {threads} -> {threads_after}, "
          f"RSS {rss / 2**20:.1f} -> {rss_after / 2**20:.1f} MiB")
    assert fds_after <= fds and threads_after <= threads
    assert rss_after - rss < 4 * 2**20
