"""Small graph algorithms on component names, without importing a graph library at run time.

(networkx takes over 100 ms to import, most of a tiny graph's start-up.)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def strongly_connected(names: Sequence[str], edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components (Tarjan), each in ``names`` order, in reverse
    topological order of the condensed graph."""
    succ: dict[str, list[str]] = {n: [] for n in names}
    for a, b in edges:
        succ[a].append(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    position = {n: i for i, n in enumerate(names)}
    for root in names:
        if root in index:
            continue
        # iterative DFS: (node, iterator over successors)
        work = [(root, iter(succ[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(succ[nxt])))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp.append(member)
                    if member == node:
                        break
                out.append(sorted(comp, key=position.__getitem__))
    return out


def topological(names: Sequence[str], edges: Iterable[tuple[str, str]]) -> list[str]:
    """Names in an order where every edge points forward, except inside cycles (whose members
    stay together); ties keep the order of ``names``."""
    edges = list(edges)
    comps = strongly_connected(names, edges)
    comp_of = {n: i for i, comp in enumerate(comps) for n in comp}
    position = {n: i for i, n in enumerate(names)}
    indegree = [0] * len(comps)
    succ: list[set[int]] = [set() for _ in comps]
    for a, b in edges:
        ca, cb = comp_of[a], comp_of[b]
        if ca != cb and cb not in succ[ca]:
            succ[ca].add(cb)
            indegree[cb] += 1
    ready = sorted((i for i in range(len(comps)) if not indegree[i]), key=lambda i: position[comps[i][0]])
    order: list[str] = []
    while ready:
        i = ready.pop(0)
        order.extend(comps[i])
        for j in sorted(succ[i], key=lambda j: position[comps[j][0]]):
            indegree[j] -= 1
            if not indegree[j]:
                ready.append(j)
        ready.sort(key=lambda k: position[comps[k][0]])
    return order
