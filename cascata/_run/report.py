"""The run report ``g.run()`` returns: per component items in and out, per worker its pid."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ComponentStats:
    name: str
    worker: int
    firings: int
    items_in: int
    items_out: int
    discarded: int


@dataclass
class RunReport:
    """What a finished run did. ``print(report)`` shows a table."""

    wall_s: float
    components: dict[str, ComponentStats] = field(default_factory=dict)
    workers: dict[int, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def build(
        cls, plan: Any, stats: dict[int, Any], pids: dict[int, int], wall_s: float
    ) -> RunReport:
        report = cls(wall_s=wall_s)
        for index, pid in pids.items():
            report.workers[index] = {"host": "localhost", "pid": abs(pid)}
        for comp in plan.components:
            s = stats.get(comp.worker, {}).get(comp.name)
            if s is None:
                continue
            report.components[comp.name] = ComponentStats(
                comp.name,
                comp.worker,
                s["firings"],
                sum(s["received"].values()),
                sum(s["sent"].values()),
                sum(s["discarded"].values()),
            )
        return report

    def __str__(self) -> str:
        rows = [("component", "worker", "firings", "in", "out", "discarded")]
        for c in self.components.values():
            rows.append(
                (c.name, str(c.worker), str(c.firings), str(c.items_in), str(c.items_out),
                 str(c.discarded))
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
        lines.append(f"wall time {self.wall_s:.3f} s on {len(self.workers)} worker(s)")
        return "\n".join(lines)
