"""The daemon's side of its fork server (forkserver.py): start it, ask it for workers, learn
from it when they exit, and start a new one when it dies.

Workers are the fork server's children, not the daemon's: their exit statuses come from the
server. Should the server die, its workers lose their parent: the daemon stops them (their
whole process groups) at once and reports them ended by SIGKILL, as it did so.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from .pool import describe_status, sample_process

logger = logging.getLogger("cascata.worker")

# Seconds a fresh fork server gets to import what workers need and say it is ready (a busy host).
READY_TIMEOUT = 30.0
# Seconds the fork server gets to answer one fork request.
FORK_TIMEOUT = 10.0
# Seconds between two starts of a fork server that keeps dying (no busy restart loop).
RESTART_DELAY = 1.0
# Seconds a stopping fork server gets to exit before it is killed.
STOP_TIMEOUT = 5.0
# The wait status of a process ended by SIGKILL (what the daemon does to a dead server's workers).
KILLED = signal.SIGKILL.value


class ForkServerError(RuntimeError):
    """The fork server could not start a worker (it died, or did not answer in time)."""


class ForkServer:
    """One fork server at a time; ``fileno()`` is readable when it has news (or died)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.ready = False
        self._started_at = 0.0
        self._pending = b""
        self._live: set[int] = set()  # workers this server forked and has not reported ended
        self._orphans: set[int] = set()  # workers of a server that died, until they are gone
        self._stopped: set[int] = set()  # workers stopped because their server died
        self._exits: dict[int, int] = {}  # pid -> wait status, until forget()
        self._start()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def fileno(self) -> int:
        """The socket to poll; -1 while no server runs."""
        return self.sock.fileno() if self.sock is not None else -1

    # -- life of the server -----------------------------------------------------------------------

    def _start(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cascata.worker.forkserver", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, start_new_session=True,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock, self.ready, self._pending = ours, False, b""
        self._started_at = time.monotonic()

    def restart_if_due(self) -> None:
        """Start a new server if the last one died (at most one start per RESTART_DELAY)."""
        if self.sock is None and time.monotonic() - self._started_at >= RESTART_DELAY:
            self._start()
            logger.info("started a new worker fork server (pid %s)", self.pid)

    def _lost(self) -> None:
        """The server's end closed: it died. Stop its workers; a new one starts soon."""
        assert self.proc is not None and self.sock is not None
        self.sock.close()
        self.sock = None
        try:
            status = self.proc.wait(STOP_TIMEOUT)
            how = describe_status(_wait_status(status))
        except subprocess.TimeoutExpired:  # it closed its end but lives on: finish it
            self.proc.kill()
            self.proc.wait()
            how = "closed its connection"
        logger.warning(
            "the worker fork server (pid %s) %s; %s; a new one starts",
            self.proc.pid, how,
            f"stopping its {len(self._live)} worker(s)" if self._live else "it had no workers",
        )
        for pid in self._live:
            _kill_group(pid)
        self._orphans |= self._live
        self._stopped |= self._live
        self._live = set()

    def close(self) -> None:
        """Stop the server (it exits when its end of the pair closes)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    # -- requests ---------------------------------------------------------------------------------

    def fork(self, args: list[str]) -> int:
        """A fresh worker process running ``child.main(args)``; its pid."""
        if self.sock is None:
            self._start()
            logger.info("started a new worker fork server (pid %s)", self.pid)
        if not self.ready:
            self._wait_for("ready", READY_TIMEOUT)
        assert self.sock is not None
        try:
            self.sock.sendall(json.dumps({"fork": args}).encode() + b"\n")
        except OSError as exc:
            self._lost()
            raise ForkServerError(f"the worker fork server died ({exc})") from None
        reply = self._wait_for("pid", FORK_TIMEOUT)
        pid = int(reply["pid"])
        self._live.add(pid)
        return pid

    def _wait_for(self, key: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if key == "ready" and self.ready:
                return {"ready": True}
            if self.sock is None:
                raise ForkServerError("the worker fork server died")
            if left <= 0:
                raise ForkServerError(f"the worker fork server did not answer within {timeout:g} s")
            for message in self._read(left):
                if "error" in message:
                    raise ForkServerError(str(message["error"]))
                if key in message:
                    return message

    # -- news -------------------------------------------------------------------------------------

    def collect(self, timeout: float = 0.0) -> None:
        """Take what the server said (exits), waiting up to ``timeout`` seconds for news."""
        if self.sock is None:
            time.sleep(timeout)
            return
        for message in self._read(timeout):
            if "pid" in message or "error" in message:
                logger.warning("the worker fork server answered a request nobody made")

    def _read(self, timeout: float) -> list[dict[str, Any]]:
        """Messages that arrive within ``timeout``; exits are recorded here."""
        assert self.sock is not None
        readable, _, _ = select.select([self.sock], [], [], timeout)
        if not readable:
            return []
        try:
            data = self.sock.recv(1 << 16)
        except OSError:
            data = b""
        if not data:
            self._lost()
            return []
        *lines, self._pending = (self._pending + data).split(b"\n")
        messages = [json.loads(line) for line in lines]
        for message in messages:
            if "ready" in message:
                self.ready = True
            elif "exited" in message:
                pid = int(message["exited"])
                self._live.discard(pid)
                self._exits[pid] = int(message["status"])
        return [m for m in messages if "exited" not in m and "ready" not in m]

    def status(self, pid: int) -> int | None:
        """The wait status of worker ``pid`` once it ended, else None."""
        if pid in self._orphans:
            sample = sample_process(pid)
            if sample is None or sample.state == "Z":
                self._orphans.discard(pid)
                self._exits[pid] = KILLED
        return self._exits.get(pid)

    def orphaned(self, pid: int) -> bool:
        """Whether worker ``pid`` was stopped because its fork server died."""
        return pid in self._stopped

    def forget(self, pids: list[int]) -> None:
        """The session of these workers is over: drop what is known about them."""
        for pid in pids:
            self._exits.pop(pid, None)
            self._orphans.discard(pid)
            self._stopped.discard(pid)
            self._live.discard(pid)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_status(returncode: int) -> int:
    """subprocess's return code as a raw wait status."""
    return -returncode if returncode < 0 else returncode << 8
