"""Real ``cascata worker`` daemons on loopback ports, as subprocesses, for tests."""

from __future__ import annotations

import glob
import os
import pathlib
import select
import shutil
import signal
import subprocess
import sys
import tempfile

import psutil
import pytest

from cascata.transport.auth import generate_key_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Seconds a daemon gets to print its ready line (it imports cascata; the machine may be busy).
READY_TIMEOUT = 30.0
# Seconds a daemon gets to exit after SIGTERM (it stops a run it serves first).
STOP_TIMEOUT = 15.0
# What the command line of a daemon's fork server (and of the workers it forks) holds.
FORK_SERVER = "cascata.worker.forkserver"


class DaemonProcess:
    """``python -m cascata.worker --listen 127.0.0.1:0`` with its ready line parsed.

    ``listen`` and ``wrap`` (argv in, argv out: e.g. a namespace host's ``argv``) let it run
    elsewhere; ``python`` replaces the interpreter's arguments (e.g. to run a patched daemon)."""

    def __init__(self, key_file: str, processes: int | None = 2, listen: str = "127.0.0.1:0",
                 wrap=None, python: list[str] | None = None) -> None:
        self.log = tempfile.NamedTemporaryFile("w+", prefix="cascata-daemon-", suffix=".log")
        argv = [*(python or [sys.executable, "-m", "cascata.worker"]), "--listen", listen,
                "--key-file", key_file]
        argv += [] if processes is None else ["--processes", str(processes)]  # None: the default
        argv = wrap(argv) if wrap else argv
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], READY_TIMEOUT)
        self.ready_line = self.proc.stdout.readline().strip() if ready else ""
        if not self.ready_line.startswith("cascata worker ready on "):
            self.stop()
            raise AssertionError(f"daemon did not start: {self.ready_line!r} {self.stderr()}")
        self.address = self.ready_line.split()[4].rstrip(":")
        self.pid = self.proc.pid

    def fork_server(self) -> psutil.Process | None:
        """The daemon's fork server (the parent of its workers), if it runs."""
        try:
            kids = psutil.Process(self.pid).children()
        except psutil.NoSuchProcess:
            return None
        for p in kids:
            try:
                if FORK_SERVER in p.cmdline() and _alive(p):
                    return p
            except psutil.NoSuchProcess:
                continue
        return None

    def service_pids(self) -> set[int]:
        """The daemon and its fork server while the daemon runs (what stays between runs)."""
        if self.proc.poll() is not None:
            return set()
        server = self.fork_server()
        return {self.pid} | ({server.pid} if server is not None else set())

    def workers(self) -> list[psutil.Process]:
        """The daemon's live worker processes (its fork server's children)."""
        server = self.fork_server()
        try:
            kids = server.children() if server is not None else []
        except psutil.NoSuchProcess:
            return []
        return [p for p in kids if _alive(p)]

    def stderr(self) -> str:
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, sig)

    def stop(self) -> int:
        """SIGTERM, then SIGKILL (with its workers) if it does not exit in time."""
        if self.proc.poll() is None:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                server = self.fork_server()
                for p in [*self.workers(), *([server] if server else [])]:
                    p.kill()
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()
        # A daemon killed with SIGKILL (a test's "host died") cannot remove its run directory.
        for path in glob.glob(os.path.join(tempfile.gettempdir(), f"cascata-run-{self.pid}-*")):
            shutil.rmtree(path, ignore_errors=True)
        return self.proc.returncode


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def record_launches(monkeypatch) -> list[bytes]:
    """From now on, every LAUNCH this process sends is also kept here (as by one who holds the
    key and captured it), encoded as sent."""
    from cascata.transport import control

    sent: list[bytes] = []
    encode = control.Launch.encode

    def recording(self):
        sent.append(encode(self))
        return sent[-1]

    monkeypatch.setattr(control.Launch, "encode", recording)
    return sent


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "cluster.key"
    generate_key_file(path)
    return str(path)


@pytest.fixture
def daemons(key_file):
    """``daemons(n)`` starts n daemons sharing ``key_file``; all stop at the end of the test."""
    started: list[DaemonProcess] = []

    def start(n: int = 1, processes: int | None = 2) -> list[DaemonProcess]:
        new = [DaemonProcess(key_file, processes) for _ in range(n)]
        started.extend(new)
        return new

    yield start
    for d in started:
        d.stop()
