"""Placement: which worker runs which component (pure; no processes here).

Components are laid out in topological order (cycles collapsed) and cut into contiguous runs,
so neighbouring stages share a worker and hand items over in memory; members of one component
group go to different workers, so data parallelism uses different cores.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from .._topology import topological


def available_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


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


def pin_to_hosts(
    placement: dict[str, int],
    slots: Sequence[str],
    pins: dict[str, str],
    edges: Sequence[tuple[str, str]],
    groups: dict[str, str],
) -> dict[str, int]:
    """Move each pinned component to a worker on its host: next to a neighbour already there
    when it has one (a group member: the least loaded worker there, so members stay spread)."""
    placement = dict(placement)
    neighbours: dict[str, list[str]] = {}
    for a, b in edges:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    for name, host in pins.items():
        if slots[placement[name]] == host:
            continue
        candidates = [w for w, h in enumerate(slots) if h == host]
        load = {w: 0 for w in candidates}
        for w in placement.values():
            if w in load:
                load[w] += 1
        near = [placement[n] for n in neighbours.get(name, []) if placement.get(n) in load]
        if near and name not in groups:
            placement[name] = near[0]
        else:
            placement[name] = min(candidates, key=lambda w: (load[w], w))
    return placement
