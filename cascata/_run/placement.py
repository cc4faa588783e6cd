"""Placement: which worker runs which component (pure; no processes here).

Components are laid out in topological order (cycles collapsed) and cut into contiguous runs,
so neighbouring stages share a worker and hand items over in memory; members of one component
group go to different workers, so data parallelism uses different cores.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._topology import topological


def assign(
    names: Sequence[str],
    edges: Sequence[tuple[str, str]],
    num_workers: int,
    groups: dict[str, str] | None = None,
) -> dict[str, int]:
    """Map each component name to a worker index in ``range(num_workers)``."""
    if num_workers < 1:
        raise ValueError("num_workers must be at least 1")
    order = topological(names, edges)
    groups = groups or {}
    placement: dict[str, int] = {}
    singles = [n for n in order if n not in groups]
    per_worker = -(-len(singles) // num_workers) if singles else 1
    for i, name in enumerate(singles):
        placement[name] = min(i // per_worker, num_workers - 1)
    seen: dict[str, int] = {}
    for name in order:
        alias = groups.get(name)
        if alias is None:
            continue
        k = seen.get(alias, 0)
        seen[alias] = k + 1
        placement[name] = k % num_workers
    return placement
