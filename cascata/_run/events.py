"""What a run tells its observers (the progress view, or any callable the caller adds).

The coordinator emits events from its supervisor thread and never owns the terminal: an
observer decides what to show. Every event is a small frozen record:

- :class:`Started`: the run's components, once the workers are up;
- :class:`Stats`: a live report about ``STATS_INTERVAL`` apart while the run goes on;
- :class:`LogLine`: a log line from a worker (after it was written);
- :class:`Finished` with the run report, or :class:`Failed` with the error, once every worker
  has stopped and before ``run()`` returns, so an observer can draw its last frame first.

An observer that raises is dropped (with a warning): seeing the run must never break it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .report import RunReport

# Seconds between live statistics (a request to every worker, answered from its counters).
STATS_INTERVAL = 0.25


@dataclass(frozen=True)
class Started:
    labels: tuple[str, ...]
    num_workers: int


@dataclass(frozen=True)
class Stats:
    report: RunReport


@dataclass(frozen=True)
class LogLine:
    level: str
    component: tuple[str, str] | None
    message: str


@dataclass(frozen=True)
class Finished:
    report: RunReport


@dataclass(frozen=True)
class Failed:
    error: BaseException


Event = Started | Stats | LogLine | Finished | Failed
Observer = Callable[[Event], None]


class Observers:
    """The observers of one run; ``wants_stats`` tells whether live statistics are needed."""

    def __init__(self, observers: list[Observer] | None = None) -> None:
        self._observers = list(observers or [])

    @property
    def wants_stats(self) -> bool:
        return bool(self._observers)

    def emit(self, event: Any) -> None:
        for observer in list(self._observers):
            try:
                observer(event)
            except Exception as exc:
                self._observers.remove(observer)
                warnings.warn(
                    f"run observer {observer!r} raised {type(exc).__name__}: {exc}; it gets no "
                    "more events (the run goes on)",
                    RuntimeWarning,
                    stacklevel=2,
                )
