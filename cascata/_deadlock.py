"""Static deadlock checks run before any process starts.

Four kinds of problem are found from the wiring alone (SPEC 3):

- a cycle of components none of whose edges delivers a seed (a value set with ``<`` after the
  port was connected): every member waits for another, so nothing ever fires;
- an orphan: an input port with no edge and no initial value (it would only ever see an empty
  stream, so its component would end without firing);
- a trigger port (named in ``clk``/``sync``) that nothing feeds;
- an exported input port of the top graph that nothing feeds and that has no initial value.

Each port is reported once, by its most specific problem (export, then trigger, then orphan).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from ._topology import strongly_connected
from .port import NOT_SET, InPort

# Unseeded cycles named one by one before the rest are summarised in a single line; a densely
# wired graph can hold exponentially many simple cycles, and a hundred lines help nobody.
MAX_CYCLES_REPORTED = 20


def find_issues(graph: Any) -> list[str]:
    """Every static problem of ``graph``, as messages; empty when it can run."""
    fed = _fed_ports(graph._edges)
    issues = _cycle_issues(graph)
    reported: set[int] = set()
    issues += _export_issues(graph, fed, reported)
    issues += _trigger_issues(graph, fed, reported)
    issues += _orphan_issues(graph, fed, reported)
    return issues


def _fed_ports(edges: Iterable[Any]) -> set[int]:
    """ids of the input ports that at least one edge feeds."""
    return {id(dst) for edge in edges for dst in edge.dsts}


def _seeded(port: InPort) -> bool:
    return port.initial is not NOT_SET


# -- cycles -------------------------------------------------------------------------------------


def _unseeded_steps(graph: Any) -> set[tuple[str, str]]:
    """Components as nodes; an edge ``u -> v`` when ``u`` feeds ``v`` through an unseeded port.

    A cycle of the full component graph is seeded exactly when one of its steps ``u -> v`` feeds
    a seeded inport of ``v``; dropping those steps leaves a graph whose cycles are the unseeded
    ones, so only they are enumerated.
    """
    seeded_steps: set[tuple[str, str]] = set()
    steps: set[tuple[str, str]] = set()
    for edge in graph._edges:
        src = edge.src.component.name
        for dst in edge.dsts:
            step = (src, dst.component.name)
            steps.add(step)
            if _seeded(dst):
                seeded_steps.add(step)
    return steps - seeded_steps


def _cycle_issues(graph: Any) -> list[str]:
    steps = _unseeded_steps(graph)
    names = list(graph._nodes)
    # Most graphs have no unseeded cycle: find that out without importing networkx, whose import
    # alone costs more than a small graph's whole start-up.
    looped = any(a == b for a, b in steps)
    if not looped and all(len(c) == 1 for c in strongly_connected(names, steps)):
        return []
    import networkx as nx

    digraph = nx.DiGraph()
    digraph.add_nodes_from(names)
    digraph.add_edges_from(steps)
    # nx.simple_cycles is lazy (self loops included), so the cap also bounds the search.
    cycles = sorted(
        (sorted(c) for c in itertools.islice(nx.simple_cycles(digraph), MAX_CYCLES_REPORTED + 1)),
        key=lambda names: (len(names), names),
    )
    issues = [
        f"Cycle deadlock: components {names!r} form a cycle with no default seed."
        for names in cycles[:MAX_CYCLES_REPORTED]
    ]
    if len(cycles) > MAX_CYCLES_REPORTED:
        tangled = sorted(
            name
            for scc in nx.strongly_connected_components(digraph)
            if len(scc) > 1
            for name in scc
        )
        issues.append(
            f"Cycle deadlock: more unseeded cycles among components {tangled!r}; seed one inport "
            "on each cycle with '<' after connecting it."
        )
    return issues


# -- ports --------------------------------------------------------------------------------------


def _export_issues(graph: Any, fed: set[int], reported: set[int]) -> list[str]:
    if getattr(graph, "_parent", None) is not None:
        return []  # a subgraph's exports are fed by the graph that embeds it
    issues = []
    for name, handle in getattr(graph, "_exports", {}).items():
        ports = [p for p in _concrete_ports(handle) if isinstance(p, InPort)]
        starving = [p for p in ports if id(p) not in fed and not _seeded(p)]
        if starving:
            issues.append(f"Export deadlock: exported inport '{name}' has no upstream.")
            reported.update(id(p) for p in starving)
    return issues


def _concrete_ports(handle: Any) -> list[Any]:
    """The ports behind an exported port, group port or nested export handle."""
    if hasattr(handle, "_resolve_ports"):
        return list(handle._resolve_ports())
    return [handle]


def _trigger_issues(graph: Any, fed: set[int], reported: set[int]) -> list[str]:
    issues = []
    for comp in graph._nodes.values():
        named = dict.fromkeys(p for ports, _fires in comp._firing for p in ports)
        for pname in named:
            port = comp._ports[pname]
            if id(port) in fed or id(port) in reported:
                continue
            issues.append(f"Trigger deadlock: '{port.full_name}' marked as clk/sync but never fed.")
            reported.add(id(port))
    return issues


def _orphan_issues(graph: Any, fed: set[int], reported: set[int]) -> list[str]:
    issues = []
    for comp in graph._nodes.values():
        for port in comp.inports:
            if id(port) in fed or id(port) in reported or _seeded(port):
                continue
            issues.append(f"Orphan port: '{port.full_name}' has no producer and no default.")
            reported.add(id(port))
    return issues
