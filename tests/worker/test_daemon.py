"""The cascata worker daemon: refuses to start unsafely, answers anything malformed, serves on."""

from __future__ import annotations

import os
import platform
import signal

import psutil
import pytest
import zmq
from click.testing import CliRunner

from cascata import Graph, HostLostError, PlanRefusedError
from cascata.cli import main, worker_main
from cascata.transport import control, sockets
from cascata.transport.auth import load_key
from cascata.worker.session import versions
from tests.components import Double, Source
from tests.daemons import record_launches
from tests.helpers import poll_for

# Seconds a raw peer waits for the daemon's answer (some answers wait for a fresh process to
# start, which takes seconds on a busy machine).
ANSWER_TIMEOUT = 30.0


# -- refusing to start -----------------------------------------------------------------------------


def _worker(*args):
    return CliRunner().invoke(worker_main, list(args))


def test_keygen_writes_a_private_key_and_never_overwrites(tmp_path):
    path = tmp_path / "k"
    first = CliRunner().invoke(main, ["keygen", str(path)])
    assert first.exit_code == 0, first.output
    assert os.stat(path).st_mode & 0o777 == 0o600
    before = path.read_bytes()
    again = CliRunner().invoke(main, ["keygen", str(path)])
    assert again.exit_code != 0 and "already exists" in again.output
    assert path.read_bytes() == before
    assert before.strip().decode() not in first.output + again.output


def test_the_daemon_refuses_to_start_without_a_key_file(tmp_path):
    result = _worker("--listen", "127.0.0.1:0", "--key-file", str(tmp_path / "missing"))
    assert result.exit_code == 2 and "does not exist" in result.output and "cascata keygen" in result.output


def test_the_daemon_refuses_a_key_file_others_can_read(key_file):
    os.chmod(key_file, 0o640)
    result = _worker("--listen", "127.0.0.1:0", "--key-file", key_file)
    assert result.exit_code == 2 and "chmod 600" in result.output


def test_the_daemon_refuses_a_short_key(tmp_path):
    path = tmp_path / "short"
    path.write_text("abcd\n")
    os.chmod(path, 0o600)
    result = _worker("--listen", "127.0.0.1:0", "--key-file", str(path))
    assert result.exit_code == 2 and "2-byte key" in result.output


@pytest.mark.parametrize("listen", ["0.0.0.0:7700", "*:7700"])
def test_the_daemon_refuses_all_interfaces_unless_allowed(key_file, listen):
    result = _worker("--listen", listen, "--key-file", key_file)
    assert result.exit_code == 2 and "--allow-all-interfaces" in result.output


def test_a_malformed_listen_address_is_refused_naming_it(key_file):
    result = _worker("--listen", "localhost", "--key-file", key_file)
    assert result.exit_code == 2 and "HOST:PORT" in result.output


# -- serving ---------------------------------------------------------------------------------------


class RawPeer:
    """A coordinator that speaks the daemon's protocol by hand (CurveZMQ client with the key)."""

    def __init__(self, address: str, key_file: str | None) -> None:
        self.ctx = zmq.Context()
        self.sock = sockets.open_control_dealer(self.ctx, b"c-raw-peer")
        key = load_key(key_file) if key_file else None
        sockets.connect(self.sock, f"tcp://{address}", key)

    def send(self, *frames: bytes) -> None:
        self.sock.send_multipart(list(frames))

    def answer(self, timeout: float = ANSWER_TIMEOUT) -> list[bytes] | None:
        if not self.sock.poll(timeout * 1000):
            return None
        return self.sock.recv_multipart()

    def record(self) -> control.Record:
        while True:
            frames = self.answer()
            assert frames is not None, "the daemon did not answer"
            record = control.decode(frames[-1])
            if not isinstance(record, control.Beat):
                return record

    def close(self) -> None:
        sockets.close(self.sock)
        self.ctx.term()


def _hello(**changes):
    py, ver, dill_ver = versions()
    fields = {"python": py, "cascata": ver, "dill": dill_ver, "by_value": False} | changes
    return control.Hello(**fields).encode()


def _run_one(address: str, key_file: str) -> list[int]:
    g = Graph()
    g.src = Source
    g.dbl = Double
    g.src.n < 50
    g.src.out >> g.dbl.x
    items = g.collect(g.dbl.out)
    g.run(workers=[address], key_file=key_file)
    return sorted(items)


def test_ready_line_names_address_processes_and_versions_and_sigterm_stops_cleanly(daemons):
    (d,) = daemons(1, processes=3)
    py, ver, dill_ver = versions()
    assert d.ready_line == (
        f"cascata worker ready on {d.address}: 3 processes, Python {py}, cascata {ver}, dill {dill_ver}"
    )
    assert py == platform.python_version()
    d.signal(signal.SIGTERM)
    assert d.proc.wait(15) == 0


def test_garbage_truncated_frames_and_strangers_are_answered_then_a_valid_plan_runs(daemons, key_file):
    (d,) = daemons(1)
    stranger = RawPeer(d.address, None)  # no CurveZMQ at all: the handshake never completes
    peer = RawPeer(d.address, key_file)
    try:
        try:  # a socket whose handshake never completes may have nowhere to queue: never block
            stranger.sock.send(b"\x00garbage", zmq.NOBLOCK)
        except zmq.Again:
            pass
        peer.send(b"\xc1\xc1 not msgpack")
        assert "malformed" in peer.record().reason
        peer.send(b"a", b"b", b"c")
        assert "3 frames" in peer.record().reason
        peer.send(control.Probe(1).encode()[:-1])  # truncated
        assert "malformed" in peer.record().reason
        peer.send(b"w0", control.Abort().encode())  # for a worker, outside any plan
        assert "outside any plan" in peer.record().reason
        assert stranger.answer(0.5) is None
    finally:
        stranger.close()
        peer.close()
    assert _run_one(d.address, key_file) == [2 * i for i in range(50)]
    assert d.proc.poll() is None


def test_a_version_mismatch_is_refused_naming_both_versions(daemons, key_file):
    (d,) = daemons(1)
    py, ver, _ = versions()
    peer = RawPeer(d.address, key_file)
    try:
        peer.send(_hello(python="2.7.18"))
        reason = peer.record().reason
        assert "Python 2.7.18 there" in reason and f"{py} here" in reason
        peer.send(_hello(cascata="0.0.1"))
        reason = peer.record().reason
        assert "cascata 0.0.1 there" in reason and f"{ver} here" in reason
        peer.send(_hello())
        welcome = peer.record()
        assert isinstance(welcome, control.Welcome) and welcome.processes == 2
    finally:
        peer.close()


def test_a_plan_that_cannot_load_is_reported_and_a_replayed_plan_id_is_refused(daemons, key_file):
    (d,) = daemons(1)
    peer = RawPeer(d.address, key_file)
    try:
        peer.send(_hello())
        welcome = peer.record()
        assert isinstance(welcome, control.Welcome)
        launch = control.Launch("plan-1", [0], b"not a pickle", 0.25, 3.0, 1.0, welcome.nonce)
        peer.send(launch.encode())
        started = peer.record()
        assert isinstance(started, control.Started) and list(started.pids) == [0]
        error = peer.record()  # relayed from the worker process, which could not load the plan
        assert isinstance(error, control.Error)
        peer.send(control.Release(0.5).encode())
        while not isinstance(peer.record(), control.Released):
            pass
        peer.send(launch.encode())  # a HELLO admits one plan
        assert "came before a HELLO" in peer.record().reason
        peer.send(_hello())
        assert isinstance(peer.record(), control.Welcome)
        peer.send(launch.encode())
        assert "already run here" in peer.record().reason
    finally:
        peer.close()
    poll_for(lambda: not d.workers())
    assert _run_one(d.address, key_file) == [2 * i for i in range(50)]


def test_a_launch_without_a_valid_hello_is_refused_unread_and_the_next_valid_plan_runs(
    daemons, key_file, tmp_path
):
    from tests.faults.tools import trap_body

    (d,) = daemons(1)
    trap = str(tmp_path / "unpickled")
    peer = RawPeer(d.address, key_file)
    try:
        peer.send(control.Launch("no-hello", [0], trap_body(trap), 0.25, 3.0, 1.0).encode())
        refused = peer.record()
        assert isinstance(refused, control.Refused)
        assert "plan no-hello came before a HELLO" in refused.reason, refused.reason
        peer.send(_hello(cascata="0.0.1"))  # a HELLO the daemon refuses admits nothing either
        assert isinstance(peer.record(), control.Refused)
        peer.send(control.Launch("bad-hello", [0], trap_body(trap), 0.25, 3.0, 1.0).encode())
        assert "plan bad-hello came before a HELLO" in peer.record().reason
    finally:
        peer.close()
    assert not d.workers() and not os.path.exists(trap)
    log = d.stderr()
    assert "refused: plan no-hello came before a HELLO" in log, log
    assert _run_one(d.address, key_file) == [2 * i for i in range(50)]
    assert not os.path.exists(trap)


def test_a_plan_without_the_nonce_of_its_welcome_is_refused(daemons, key_file, tmp_path):
    from tests.faults.tools import trap_body

    (d,) = daemons(1)
    trap = str(tmp_path / "unpickled")
    peer = RawPeer(d.address, key_file)
    try:
        peer.send(_hello())
        first = peer.record()
        peer.send(_hello())  # greeted again: only the latest WELCOME's nonce counts
        second = peer.record()
        assert first.nonce != second.nonce and len(second.nonce) >= 16
        for nonce in (b"", first.nonce):
            peer.send(control.Launch("no-nonce", [0], trap_body(trap), 0.25, 3.0, 1.0, nonce).encode())
            reason = peer.record().reason
            assert "does not carry the nonce of the WELCOME" in reason and "replayed" in reason
    finally:
        peer.close()
    assert not d.workers() and not os.path.exists(trap)


def test_a_recorded_plan_replayed_to_a_restarted_daemon_is_refused(daemons, key_file, monkeypatch):
    (d,) = daemons(1)
    sent = record_launches(monkeypatch)
    assert _run_one(d.address, key_file) == [2 * i for i in range(50)]
    monkeypatch.undo()
    assert len(sent) == 1
    d.stop()
    (again,) = daemons(1)  # a new life: it knows no plan id the old one ran
    peer = RawPeer(again.address, key_file)  # one who holds the key and recorded the plan
    try:
        peer.send(_hello())
        assert isinstance(peer.record(), control.Welcome)
        peer.send(sent[0])
        refused = peer.record()
        assert isinstance(refused, control.Refused) and "replayed" in refused.reason, refused
    finally:
        peer.close()
    assert not again.workers()
    assert _run_one(again.address, key_file) == [2 * i for i in range(50)]


def _start_endless_run(d, key_file):
    """A run on daemon ``d`` that goes on until stopped, once both its workers are up."""
    from tests.test_run_hosts import Slow, pipeline

    g = pipeline(Slow, 100_000)
    g.start(workers=[d.address], key_file=key_file)
    poll_for(lambda: len(d.workers()) == 2, timeout=30)
    return g


def test_sigterm_during_a_run_stops_it_and_the_run_raises_host_lost(daemons, key_file):
    (d,) = daemons(1)
    g = _start_endless_run(d, key_file)
    d.signal(signal.SIGTERM)
    with pytest.raises(HostLostError, match="shutting down"):
        g.join()
    assert d.proc.wait(15) == 0
    assert not d.workers()


# -- the fork server -------------------------------------------------------------------------------


class RecordsWhoLoadsIt:
    """A plan payload whose unpickling writes a file named after the process that unpickles it,
    holding the pid of that process's parent."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def __reduce__(self):
        path = f"os.path.join({self.directory!r}, str(os.getpid()))"
        return (exec, (f"import os; open({path}, 'w').write(str(os.getppid()))",))


def test_only_the_plans_own_fresh_worker_unpickles_it_never_the_daemon_or_its_fork_server(
    daemons, key_file, tmp_path
):
    import pickle

    (d,) = daemons(1)
    server = d.fork_server()
    assert server is not None and server.ppid() == d.pid
    peer = RawPeer(d.address, key_file)
    loaders = tmp_path / "loaders"
    loaders.mkdir()
    payload = pickle.dumps(RecordsWhoLoadsIt(str(loaders)))
    try:
        peer.send(_hello())
        welcome = peer.record()
        assert isinstance(welcome, control.Welcome)
        peer.send(control.Launch("who-loads", [0], payload, 0.25, 3.0, 1.0, welcome.nonce).encode())
        started = peer.record()
        assert isinstance(started, control.Started)
        loaded_by = poll_for(lambda: os.listdir(loaders))
        assert loaded_by == [str(started.pids[0])]
        poll_for(lambda: (loaders / loaded_by[0]).read_text())
        assert (loaders / loaded_by[0]).read_text() == str(server.pid)
        peer.send(control.Release(0.5).encode())
        while not isinstance(peer.record(), control.Released):
            pass
    finally:
        peer.close()
    # the same server forks the next plan's workers; it runs no thread (no zmq context) of its own
    assert d.fork_server().pid == server.pid and server.num_threads() == 1
    assert _run_one(d.address, key_file) == [2 * i for i in range(50)]


def test_a_fork_server_killed_while_idle_is_replaced_and_logged(daemons, key_file):
    (d,) = daemons(1)
    old = d.fork_server()
    old.kill()
    poll_for(lambda: d.fork_server() is not None and d.fork_server().pid != old.pid)
    assert f"the worker fork server (pid {old.pid}) killed by signal 9" in d.stderr()
    assert _run_one(d.address, key_file) == [2 * i for i in range(50)]


def test_a_fork_server_killed_mid_run_fails_that_run_by_name_and_the_next_runs(daemons, key_file):
    (d,) = daemons(1)
    g = _start_endless_run(d, key_file)
    workers = d.workers()
    d.fork_server().kill()
    with pytest.raises(PlanRefusedError, match="fork server of the daemon at .* died") as info:
        g.join()
    assert info.value.address == d.address
    for p in workers:  # stopped with their whole process groups, not left to run on
        poll_for(lambda p=p: not p.is_running() or p.status() == psutil.STATUS_ZOMBIE)
    assert "stopping its 2 worker(s)" in d.stderr()
    poll_for(lambda: d.fork_server() is not None)
    assert _run_one(d.address, key_file) == [2 * i for i in range(50)]
