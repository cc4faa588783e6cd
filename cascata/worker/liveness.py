"""Busy or frozen: the liveness rule for a worker process, as a pure decision (samples in,
verdict out), shared by the coordinator (its local workers) and a daemon (its own workers).

A worker answers through a heartbeat thread. A component in a long C call that holds the GIL (a
sort of 12 million floats, a huge ``json.loads``) stops that thread too, but the process keeps
using CPU: it is busy, not frozen. A worker counts as lost only when, for the whole liveness
limit, it neither answered nor used CPU; a stopped process (SIGSTOP, a debugger) uses none.
"""

from __future__ import annotations

from dataclasses import dataclass

# /proc states of a stopped process: stopped by a signal, or by a tracer (a debugger).
STOPPED_STATES = frozenset({"T", "t"})


@dataclass(frozen=True)
class ProcessSample:
    """What the kernel says about a process: CPU time used (clock ticks, user + system) and
    its state letter (``R`` running, ``S`` sleeping, ``T`` stopped, ...)."""

    cpu_ticks: int
    state: str

    @property
    def stopped(self) -> bool:
        return self.state in STOPPED_STATES


class Liveness:
    """Tracks one worker: when it last answered and when it last used CPU."""

    def __init__(self, limit: float, now: float) -> None:
        self.limit = limit
        self._answered = now
        self._progressed = now
        self._cpu: int | None = None
        self._stopped = False
        self._sampled = False

    @property
    def stopped(self) -> bool:
        """The last sample found the process stopped (SIGSTOP, a debugger)."""
        return self._stopped

    def answered(self, now: float) -> None:
        """The worker sent something (a heartbeat, any control message)."""
        self._answered = now

    def sampled(self, now: float, sample: ProcessSample | None) -> None:
        """A reading of the worker's CPU time and state (None: not available, e.g. no /proc:
        then only answers count, as before)."""
        if sample is None:
            return
        if self._cpu is not None and sample.cpu_ticks != self._cpu and not sample.stopped:
            self._progressed = now
        self._cpu = sample.cpu_ticks
        self._stopped = sample.stopped
        self._sampled = True

    def verdict(self, now: float) -> str | None:
        """None while the worker lives; else why it counts as lost (the WorkerLostError cause)."""
        silent = now - self._answered
        idle = now - max(self._answered, self._progressed)
        if silent <= self.limit or idle <= self.limit:
            return None
        if self._stopped:
            return f"stopped (process state T: SIGSTOP or a debugger) and silent for {silent:.1f} s"
        if not self._sampled:
            return f"stopped answering for {silent:.1f} s (frozen or stopped)"
        return f"frozen: no answer and no CPU time used for {idle:.1f} s"
