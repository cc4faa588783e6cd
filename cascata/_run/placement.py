"""Placement: which worker runs which component (pure; no processes here).

Components are laid out in topological order (cycles collapsed) and cut into contiguous runs,
so neighbouring stages share a worker and hand items over in memory; members of one component
group go to different workers, so data parallelism uses different cores. On several hosts the
runs fill one host's workers before the next host's, so a chain crosses from host to host as
few times as it can (once over two hosts), while a group's members still alternate hosts.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._topology import topological
from ..worker.machine import available_cpus

__all__ = ["assign", "available_cpus", "compact", "host_major", "pin_to_hosts"]


def assign(
    names: Sequence[str],
    edges: Sequence[tuple[str, str]],
    num_workers: int,
    groups: dict[str, str] | None = None,
    slots: Sequence[str] = (),
) -> dict[str, int]:
    """Map each component name to a worker index in ``range(num_workers)``; ``slots`` gives
    the host of each worker (none: all on one host)."""
    if num_workers < 1:
        raise ValueError("num_workers must be at least 1")
    order = topological(names, edges)
    groups = groups or {}
    placement: dict[str, int] = {}
    singles = [n for n in order if n not in groups]
    per_worker = -(-len(singles) // num_workers) if singles else 1
    chain = host_major(slots, num_workers)
    for i, name in enumerate(singles):
        placement[name] = chain[min(i // per_worker, num_workers - 1)]
    seen: dict[str, int] = {}
    for name in order:
        alias = groups.get(name)
        if alias is None:
            continue
        k = seen.get(alias, 0)
        seen[alias] = k + 1
        placement[name] = k % num_workers
    return placement


def host_major(slots: Sequence[str], num_workers: int) -> list[int]:
    """Worker indices with each host's workers together, hosts in order of first appearance
    (slots A, B, A, B give 0, 2, 1, 3): consecutive runs of a chain then share a host."""
    if not slots:
        return list(range(num_workers))
    first = {}
    for host in slots:
        first.setdefault(host, len(first))
    return sorted(range(num_workers), key=lambda w: (first[slots[w]], w))


def compact(placement: dict[str, int], slots: Sequence[str]) -> tuple[dict[str, int], tuple[str, ...]]:
    """Renumber the workers that host a component 0, 1, ... (in their order) and drop the
    others, with their slots: a worker with nothing to run is a process not worth starting."""
    used = sorted(set(placement.values()))
    index = {w: i for i, w in enumerate(used)}
    return {name: index[w] for name, w in placement.items()}, tuple(slots[w] for w in used) if slots else ()


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
