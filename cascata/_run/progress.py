"""The live progress view of ``g.run(progress=True)``: an observer of the run's events (events.py).

It draws, on stderr, a table refreshed a few times a second: per component the items done (taken
from its inputs by its runner, or sent for a source), the rate over the last interval, the fill
of its input buffers, how busy it was, and a mark on the slowest stage (busy longest); the last
frame stays as the final summary. While it is shown, whatever is written to ``sys.stderr`` or
``sys.stdout`` (cascata's log lines, prints in the caller) appears above the table, not through
it (rich's Live redirects both). The workers only answer a request for their counters every
STATS_INTERVAL: the view costs them nothing per item.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .events import Failed, Finished, Started, Stats
from .report import RunReport, slowest_of

# Frames per second rich draws at most (the data changes every events.STATS_INTERVAL).
REFRESH_PER_SECOND = 4


class ProgressView:
    """Shows one run's progress; call it with each event (it is the observer)."""

    def __init__(self, console: Console | None = None) -> None:
        self._console = console or Console(stderr=True)
        self._live: Live | None = None
        self._labels: tuple[str, ...] = ()
        self._previous: dict[str, int] = {}
        self._previous_at = 0.0

    def __call__(self, event: Any) -> None:
        if isinstance(event, Started):
            self._labels = event.labels
            self._previous_at = time.monotonic()
            self._live = Live(
                Text(f"starting {len(event.labels)} components on {event.num_workers} workers"),
                console=self._console,
                refresh_per_second=REFRESH_PER_SECOND,
                redirect_stdout=True,
                redirect_stderr=True,
            )
            self._live.start()
        elif isinstance(event, Stats) and self._live is not None:
            self._live.update(self.render(event.report))
        elif isinstance(event, Finished | Failed):
            self._stop(event)

    def _stop(self, event: Finished | Failed) -> None:
        live, self._live = self._live, None
        if live is None:
            return
        if isinstance(event, Finished):
            live.update(self.render(event.report, final=True))
        live.stop()  # after a failure the last frame stays; the error is raised, printed once

    def render(self, report: RunReport, final: bool = False) -> Table:
        """The table for ``report`` (rates against the previous call's counts)."""
        now = time.monotonic()
        span = max(now - self._previous_at, 1e-6)
        slowest = slowest_of({n: c.busy_s for n, c in report.components.items()})
        title = f"cascata: {'done in' if final else 'running for'} {report.wall_s:.1f} s"
        table = Table(title=title, title_justify="left", box=None, pad_edge=False)
        for name, justify in (
            ("component", "left"), ("worker", "right"), ("done", "right"), ("rate/s", "right"),
            ("input fill", "right"), ("busy", "right"), ("", "left"),
        ):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for name, c in report.components.items():
            # Items its runner has taken (not those still buffered); a source's are those sent.
            done = c.items_in - c.buffered if c.capacity else c.items_out
            if final:
                rate = done / report.wall_s if report.wall_s > 0 else 0.0
            else:
                rate = (done - self._previous.get(name, 0)) / span
            self._previous[name] = done
            fill = f"{c.buffered}/{c.capacity}" if c.capacity else "-"
            busy = "-" if c.busy_s is None else f"{min(1.0, c.busy_s / max(report.wall_s, 1e-6)):.0%}"
            mark = Text("<- slowest", style="bold yellow") if name == slowest else ""
            label = f"{name}@{c.class_name}" if c.class_name else name
            table.add_row(label, str(c.worker), f"{done:,}", f"{rate:,.0f}", fill, busy, mark)
        self._previous_at = now
        return table
