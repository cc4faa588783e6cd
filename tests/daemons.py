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


class DaemonProcess:
    """``python -m cascata.worker --listen 127.0.0.1:0`` with its ready line parsed.

    ``listen`` and ``wrap`` (argv in, argv out: e.g. a namespace host's ``argv``) let it run
    elsewhere; ``python`` replaces the interpreter's arguments (e.g. to run a patched daemon)."""

    def __init__(self, key_file: str, processes: int = 2, listen: str = "127.0.0.1:0",
                 wrap=None, python: list[str] | None = None) -> None:
        self.log = tempfile.NamedTemporaryFile("w+", prefix="cascata-daemon-", suffix=".log")
        argv = [*(python or [sys.executable, "-m", "cascata.worker"]), "--listen", listen,
                "--key-file", key_file, "--processes", str(processes)]
        argv = wrap(argv) if wrap else argv
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], READY_TIMEOUT)
        self.ready_line = self.proc.stdout.readline().strip() if ready else ""
        if not self.ready_line.startswith("cascata worker ready on "):
            self.stop()
            raise AssertionError(f"daemon did not start: {self.ready_line!r} {self.stderr()}")
        self.address = self.ready_line.split()[4].rstrip(":")
        self.pid = self.proc.pid

    def workers(self) -> list[psutil.Process]:
        """The daemon's live worker processes."""
        try:
            kids = psutil.Process(self.pid).children()
        except psutil.NoSuchProcess:
            return []
        return [p for p in kids if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

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
                for p in self.workers():
                    p.kill()
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()
        # A daemon killed with SIGKILL (a test's "host died") cannot remove its run directory.
        for path in glob.glob(os.path.join(tempfile.gettempdir(), f"cascata-run-{self.pid}-*")):
            shutil.rmtree(path, ignore_errors=True)
        return self.proc.returncode


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "cluster.key"
    generate_key_file(path)
    return str(path)


@pytest.fixture
def daemons(key_file):
    """``daemons(n)`` starts n daemons sharing ``key_file``; all stop at the end of the test."""
    started: list[DaemonProcess] = []

    def start(n: int = 1, processes: int = 2) -> list[DaemonProcess]:
        new = [DaemonProcess(key_file, processes) for _ in range(n)]
        started.extend(new)
        return new

    yield start
    for d in started:
        d.stop()
