"""The run report ``g.run()`` returns: what each component did and where it ran.

Per component: firings, items in and out, and the seconds it spent busy (running its own code and
sending), blocked sending into a full port, and waiting for input. A component that runs inline
inside its publisher's send (same worker, sole consumer of that port) has no time of its own:
its time is counted in the task that hosts it (``inline_in``). ``print(report)`` shows a table
that marks the slowest stage; ``report.to_dict()`` is JSON-ready.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .._plan import LOCAL

# Shown next to the stage that was busy longest.
SLOWEST_MARK = "<- slowest"


@dataclass
class ComponentStats:
    """One component's counters; times in seconds (None for an inline consumer, see above)."""

    name: str
    worker: int
    firings: int
    items_in: int
    items_out: int
    discarded: int
    class_name: str = ""
    busy_s: float | None = None
    blocked_s: float | None = None
    waiting_s: float | None = None
    inline_in: str | None = None
    # Items in its input buffers, and their capacities (a live view's fill; 0 after the run).
    buffered: int = 0
    capacity: int = 0


@dataclass
class WorkerStats:
    """Where one worker process ran: ``host`` is the daemon's address as given in ``workers=``
    for a remote worker (hosts made of containers or namespaces may share one machine name),
    else the local machine's name; ``hostname`` is the name its machine reports; ``pid`` is the
    process id on that machine."""

    index: int
    host: str
    pid: int
    hostname: str = ""


@dataclass
class RunReport:
    """What a finished run did. ``print(report)`` shows a table; ``to_dict()`` is JSON-ready."""

    wall_s: float
    components: dict[str, ComponentStats] = field(default_factory=dict)
    workers: dict[int, WorkerStats] = field(default_factory=dict)

    @classmethod
    def build(
        cls, plan: Any, done: dict[int, Any], pids: dict[int, int], wall_s: float
    ) -> RunReport:
        """From the Done records of every worker (``done[index]``: stats, host, pid)."""
        report = cls(wall_s=wall_s)
        for index in range(plan.num_workers):
            record = done.get(index)
            pid = getattr(record, "pid", 0) or abs(pids.get(index, 0))
            hostname = getattr(record, "host", "") or "localhost"
            where = plan.host_of(index)
            host = hostname if where == LOCAL else where
            report.workers[index] = WorkerStats(index, host, pid, hostname)
        for comp in plan.components:
            record = done.get(comp.worker)
            s = record.stats.get(comp.name) if record is not None else None
            if s is None:
                continue
            inline = s.get("inline_in")
            report.components[comp.name] = ComponentStats(
                comp.name,
                comp.worker,
                s["firings"],
                sum(s["received"].values()),
                sum(s["sent"].values()),
                sum(s["discarded"].values()),
                class_name=comp.class_name,
                busy_s=None if inline else s.get("busy"),
                blocked_s=None if inline else s.get("blocked"),
                waiting_s=None if inline else s.get("waiting"),
                inline_in=inline,
                buffered=s.get("buffered", 0),
                capacity=s.get("capacity", 0),
            )
        return report

    @property
    def slowest(self) -> str | None:
        """The component that was busy longest (the stage that bounds the pipeline's pace)."""
        return slowest_of({n: c.busy_s for n, c in self.components.items()})

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``json.dumps``: wall time, components, workers, the slowest stage."""
        return {
            "wall_s": self.wall_s,
            "slowest": self.slowest,
            "components": {n: asdict(c) for n, c in self.components.items()},
            "workers": {str(i): asdict(w) for i, w in self.workers.items()},
        }

    def __str__(self) -> str:
        slowest = self.slowest
        inline = False
        head = ("component", "worker", "firings", "in", "out", "busy s", "blocked s", "waiting s", "")
        rows = [head]
        for c in self.components.values():
            label = f"{c.name}@{c.class_name}" if c.class_name else c.name
            if c.inline_in is not None:
                times = ("in " + c.inline_in.split("@")[0], "-", "-")
                inline = True
            else:
                times = tuple(_seconds(t) for t in (c.busy_s, c.blocked_s, c.waiting_s))
            mark = SLOWEST_MARK if c.name == slowest else ""
            rows.append(
                (label, str(c.worker), str(c.firings), str(c.items_in), str(c.items_out), *times, mark)
            )
        lines = [_table(rows)]
        if inline:
            lines.append("in X: runs inline in X's sends (same worker); its time is counted in X's")
        hosts = ", ".join(f"{w.index}: {w.host} pid {w.pid}" for w in self.workers.values())
        lines.append(f"workers: {hosts}")
        lines.append(f"wall time {self.wall_s:.3f} s on {len(self.workers)} worker(s)")
        return "\n".join(lines)


def slowest_of(busy: dict[str, float | None]) -> str | None:
    """The name with the largest busy time (None when no time is known)."""
    known = {n: b for n, b in busy.items() if b is not None}
    return max(known, key=known.__getitem__) if known else None


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _table(rows: list[tuple[str, ...]]) -> str:
    """Left-aligned names, right-aligned numbers, two spaces between columns."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [r[0].ljust(widths[0])]
        cells += [v.rjust(w) for v, w in zip(r[1:-1], widths[1:-1], strict=True)]
        cells.append(r[-1])
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
