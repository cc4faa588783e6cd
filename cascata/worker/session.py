"""One plan served by a daemon: its worker processes, the control relay, heartbeats, the stop ladder.

The daemon's service loop calls :meth:`Session.tick` every turn; nothing here blocks except
:meth:`Session.stop_now` (the daemon is shutting down). The plan travels to the workers as a file
in a private run directory (mode 0700): only the fresh worker processes (forked for this plan by
the daemon's fork server) unpickle it.
"""

from __future__ import annotations

import logging
import os
import platform
import signal
import time
from importlib import metadata

import zmq

from ..transport import control, sockets
from ..transport.endpoints import ipc_endpoint, make_run_dir, remove_run_dir
from .forks import ForkServer
from .pool import sample_process

logger = logging.getLogger("cascata.worker")

# Seconds between checks while stop_now() waits for workers to exit.
_REAP_POLL = 0.01
# Seconds a worker gets to be reported gone after SIGKILL.
_KILL_WAIT = 5.0


def versions() -> tuple[str, str, str]:
    """Python, cascata and dill versions of this process, as a daemon and a coordinator compare them."""
    import dill

    return platform.python_version(), metadata.version("cascata"), dill.__version__


class Session:
    """The workers one coordinator's plan runs on this host, and the relay between them."""

    def __init__(
        self, ctx: zmq.Context, peer: bytes, launch: control.Launch, host: str, address: str,
        key_file: str, forks: ForkServer,
    ) -> None:
        self.peer = peer
        self._forks = forks
        self.plan_id = launch.plan_id
        self._launch = launch
        self._host = host
        self._address = address
        self._key_file = key_file
        self.run_dir = make_run_dir()
        self.workers_router = sockets.open_control_router(ctx)
        self._ctl = ipc_endpoint(self.run_dir, "ctl")
        sockets.bind(self.workers_router, self._ctl)
        self.procs: dict[int, int] = {}  # plan index -> pid
        self._reported: set[int] = set()
        self._told_lost = False
        self.last_seen = time.monotonic()
        self._last_beat = 0.0
        self._term_at: float | None = None
        self._kill_at = 0.0
        self._termed = False
        self.finished = False

    def start(self, router: zmq.Socket) -> None:
        """Write the plan where only this user can read it, fork one process per worker."""
        plan_path = os.path.join(self.run_dir, "plan")
        fd = os.open(plan_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self._launch.payload)
        for index in self._launch.workers:
            args = [str(index), self._ctl, self._host, self._key_file, self._address, plan_path]
            self.procs[index] = self._forks.fork(args)
        router.send_multipart([self.peer, control.Started(dict(self.procs)).encode()])

    # -- relay ------------------------------------------------------------------------------------

    def relay_from_workers(self, router: zmq.Socket) -> None:
        while True:
            try:
                ident, *rest = self.workers_router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(rest) != 1 or control.WorkerId.parse(ident).index not in self.procs:
                logger.warning("dropped a malformed message from a worker of plan %s", self.plan_id)
                continue
            router.send_multipart([self.peer, ident, rest[0]])

    def relay_to_worker(self, ident: bytes, frame: bytes) -> None:
        wid = control.WorkerId.parse(ident)
        if wid.index not in self.procs:
            raise ValueError(f"plan {self.plan_id} has no {wid} on this host")
        self.workers_router.send_multipart([wid.control, frame])

    # -- timers -----------------------------------------------------------------------------------

    def tick(self, router: zmq.Socket) -> None:
        now = time.monotonic()
        if not self._told_lost and any(self._forks.orphaned(p) for p in self.procs.values()):
            self._told_lost = True
            reason = (
                f"the worker fork server of the daemon at {self._address} died; this run's workers "
                "there were stopped (the daemon serves the next run)"
            )
            router.send_multipart([self.peer, control.Refused(reason).encode()])
        for index, pid in self.procs.items():
            status = self._forks.status(pid) if index not in self._reported else None
            if status is not None:
                self._reported.add(index)
                router.send_multipart([self.peer, control.Exited(index, status).encode()])
        if now - self._last_beat >= self._launch.heartbeat_interval:
            self._last_beat = now
            cpu = {}
            for index, pid in self.procs.items():
                sample = sample_process(pid)
                if sample is not None:
                    cpu[index] = [sample.cpu_ticks, sample.state]
            router.send_multipart([self.peer, control.Beat(cpu).encode()])
        if self._term_at is None and now - self.last_seen > self._launch.host_timeout:
            logger.warning(
                "plan %s: no word from its coordinator for %.1f s; stopping its workers",
                self.plan_id, now - self.last_seen,
            )
            router.send_multipart([self.peer, control.Abandoned(now - self.last_seen).encode()])
            self._send_all(control.Abort())
            self.release(self._launch.term_grace)
        if self._term_at is not None:
            self._ladder(router, now)

    def release(self, grace: float) -> None:
        """The run is over: workers get ``grace`` seconds to exit, then SIGTERM, then SIGKILL."""
        if self._term_at is None:
            self._term_at = time.monotonic() + grace
            self._kill_at = self._term_at + self._launch.term_grace

    def _ladder(self, router: zmq.Socket, now: float) -> None:
        if len(self._reported) == len(self.procs):
            router.send_multipart([self.peer, control.Released().encode()])
            self.finished = True
        elif now >= self._kill_at:
            self._signal_all(signal.SIGKILL)
        elif now >= (self._term_at or now) and not self._termed:
            self._termed = True
            self._signal_all(signal.SIGTERM)

    def _send_all(self, record: control.Record) -> None:
        data = record.encode()
        for index in self.procs:
            self.workers_router.send_multipart([control.WorkerId(index).control, data])

    def _signal_all(self, sig: int) -> None:
        for pid in self._running():
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                pass

    def _running(self) -> list[int]:
        """Workers not known to have exited (so not reaped: their pids are still theirs)."""
        return [pid for pid in self.procs.values() if self._forks.status(pid) is None]

    # -- end --------------------------------------------------------------------------------------

    def stop_now(self) -> None:
        """Abort the plan and wait (bounded) until every worker exited: the daemon is stopping."""
        self._send_all(control.Abort())
        for sig, wait in ((None, self._launch.term_grace), (signal.SIGTERM, self._launch.term_grace),
                          (signal.SIGKILL, _KILL_WAIT)):
            if sig is not None:
                self._signal_all(sig)
            self._wait_exits(wait)
        self.close()

    def _wait_exits(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._running() and time.monotonic() < deadline:
            self._forks.collect(_REAP_POLL)

    def close(self) -> None:
        if self._running():
            self._signal_all(signal.SIGKILL)
            self._wait_exits(_KILL_WAIT)
        self._forks.forget(list(self.procs.values()))
        sockets.close(self.workers_router)
        remove_run_dir(self.run_dir)
