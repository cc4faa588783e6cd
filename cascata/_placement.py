"""Placement: which worker runs which component (pure; no processes here).

Components are laid out in topological order (cycles collapsed) and cut into contiguous runs,
so neighbouring stages share a worker and hand items over in memory; members of one component
group go to different workers, so data parallelism uses different cores.
"""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx


def assign(
    names: Sequence[str],
    edges: Sequence[tuple[str, str]],
    num_workers: int,
    groups: dict[str, str] | None = None,
) -> dict[str, int]:
    """Map each component name to a worker index in ``range(num_workers)``."""
    if num_workers < 1:
        raise ValueError("num_workers must be at least 1")
    order = _topological(names, edges)
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


def _topological(names: Sequence[str], edges: Sequence[tuple[str, str]]) -> list[str]:
    g = nx.DiGraph()
    g.add_nodes_from(names)
    g.add_edges_from(edges)
    condensed = nx.condensation(g)
    position = {n: i for i, n in enumerate(names)}
    order: list[str] = []
    for scc in nx.lexicographical_topological_sort(
        condensed, key=lambda c: min(position[m] for m in condensed.nodes[c]["members"])
    ):
        members = condensed.nodes[scc]["members"]
        order.extend(sorted(members, key=position.__getitem__))
    return order
