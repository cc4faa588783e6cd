"""Worker handles: one start / liveness / stop interface, wherever a worker process runs.

The coordinator supervises :class:`WorkerHandle` objects and never a pid directly, so a worker
forked here (:class:`LocalWorkerHandle`) and one a daemon started on another host look alike:
each has a name for messages, reports its exit status once it ended, and is stopped by
:func:`stop_all`, the bounded ladder (FINISH/ABORT sent by the caller → grace → SIGTERM → grace →
SIGKILL).
"""

from __future__ import annotations

import os
import signal
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

from .._plan import Plan
from ..worker import pool
from ..worker.liveness import ProcessSample
from ..worker.process import worker_main


class WorkerHandle(ABC):
    """One worker process of a run: ``index`` in the plan, the ``host`` it runs on, its ``pid``
    once started, and ``status`` (a wait status) once it ended."""

    def __init__(self, index: int, host: str) -> None:
        self.index = index
        self.host = host
        self.pid: int | None = None
        self.status: int | None = None

    @property
    def name(self) -> str:
        """How messages name this worker: ``worker-3 (pid 1234, localhost)``."""
        return f"worker-{self.index} (pid {self.pid or '?'}, {self.host})"

    @property
    def running(self) -> bool:
        return self.pid is not None and self.status is None

    def describe_exit(self) -> str:
        """Why the process ended, in words (a signal, or an exit code)."""
        return pool.describe_status(self.status) if self.status is not None else "still running"

    def exit_hint(self) -> str | None:
        """What to look at for the way it ended (WorkerLostError.hint)."""
        return pool.status_hint(self.status) if self.status is not None else None

    @abstractmethod
    def start(self) -> None:
        """Start the process; it connects to the control endpoint it was given and says READY."""

    @abstractmethod
    def poll(self) -> int | None:
        """The wait status once the process ended (None while it runs); never blocks."""

    def sample(self) -> ProcessSample | None:
        """CPU time and state of the process, for the liveness rule (worker.liveness); None
        where it cannot be read from here (then only answers count)."""
        return None


class LocalWorkerHandle(WorkerHandle):
    """A worker forked from the caller's process (before the coordinator opens any socket)."""

    def __init__(
        self, plan: Plan, index: int, ctl_endpoint: str, data_endpoint: str, key: Any = None
    ) -> None:
        super().__init__(index, "localhost")
        self._args = (plan, index, ctl_endpoint, data_endpoint)
        self._key = key

    def start(self) -> None:
        self.pid = pool.fork_worker(worker_main, *self._args, os.getpid(), self._key)

    def sample(self) -> ProcessSample | None:
        return pool.sample_process(self.pid) if self.running and self.pid else None

    def poll(self) -> int | None:
        if self.running:
            assert self.pid is not None
            self.status = pool.exit_status(self.pid)
        return self.status


def stop_all(handles: Iterable[WorkerHandle], grace: float, term_grace: float) -> None:
    """After FINISH or ABORT was sent: wait ``grace`` for every worker to exit, then SIGTERM and
    SIGKILL the rest; each handle's ``status`` is set as it ends."""
    handles = list(handles)
    local = {h.pid: h for h in handles if isinstance(h, LocalWorkerHandle) and h.running}
    gone = pool.stop_ladder(list(local), grace, term_grace)
    for pid, status in gone.items():
        local[pid].status = status
    for h in handles:
        if isinstance(h, LocalWorkerHandle) and h.pid is not None and h.pid not in gone:
            # ended earlier (e.g. SIGKILLed): what its components started may still run
            pool.signal_group(h.pid, signal.SIGKILL)


class RemoteWorkerHandle(WorkerHandle):
    """A worker a daemon starts when it receives the plan (see _run.remote): its pid arrives in
    the daemon's STARTED, its exit status in the daemon's EXITED, and the daemon runs its stop
    ladder."""

    def __init__(self, index: int, link: Any) -> None:
        super().__init__(index, link.address)
        self.link = link
        # The latest CPU reading the daemon sent (control.Beat), for the liveness rule.
        self.last_sample: ProcessSample | None = None

    def sample(self) -> ProcessSample | None:
        return self.last_sample

    def start(self) -> None:
        pass  # the daemon starts every worker of its host at once, on LAUNCH

    @property
    def running(self) -> bool:
        return self.status is None

    def poll(self) -> int | None:
        return self.status
