"""Graphs: containers of named component instances and the edges between their ports.

``g.name = Component`` adds an instance (and binds ``name`` in the caller's namespace, as cascata
0.1 did); ``a.out >> b.inp`` records an edge. Nothing runs until :meth:`Graph.run`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from .component import Component
from .errors import GraphError
from .port import NOT_SET, InPort, OutPort

_RESERVED = frozenset(
    {"run", "start", "join", "export", "node", "edge", "collect", "check_deadlocks", "to_json",
     "from_json", "to_dot", "nodes", "edges", "copy"}
)


@dataclass(frozen=True)
class Edge:
    """One publisher feeding one or more input ports.

    With one destination every item goes there; with several (an edge into a component group)
    each item goes to exactly one of them.
    """

    src: OutPort
    dsts: tuple[InPort, ...]


class Graph:
    """A dataflow graph of component instances; see the README for the DSL."""

    def __init__(self) -> None:
        object.__setattr__(self, "nodes", {})
        object.__setattr__(self, "edges", [])
        object.__setattr__(self, "group_handles", {})
        object.__setattr__(self, "_exports", {})
        object.__setattr__(self, "_subgraphs", {})
        object.__setattr__(self, "_run", None)
        object.__setattr__(self, "parent", None)

    # -- building -------------------------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        if name in self._exports and _is_port_handle(value):
            return  # ``g.sub.out >>= x`` assigns the export handle back to itself
        obj = self._add(name, value)
        _bind_in_caller(name, obj, depth=2)

    def _add(self, name: str, value: Any) -> Any:
        from ._groups import ComponentGroup

        if not name.isidentifier():
            raise GraphError(f"component name {name!r} must be a Python identifier")
        if name in _RESERVED:
            raise GraphError(f"'{name}' is a Graph method; choose another component name")
        if name in self.nodes or name in self.group_handles or name in self._subgraphs:
            raise GraphError(f"graph already has a component named '{name}'; names must be unique")
        if isinstance(value, type) and issubclass(value, Component):
            return self.node(name, value(name))
        if isinstance(value, Component):
            return self.node(name, value)
        if isinstance(value, ComponentGroup):
            return value._attach(self, name)
        if isinstance(value, Graph):
            from ._subgraph import add_subgraph

            return add_subgraph(self, name, value)
        raise GraphError(
            f"g.{name} = {value!r}: a graph holds components (a @component class or instance), "
            "component groups (Component * n) or subgraphs"
        )

    def __getattr__(self, name: str) -> Any:
        for table in ("nodes", "group_handles", "_exports", "_subgraphs"):
            entries = self.__dict__.get(table, {})
            if name in entries:
                return entries[name]
        raise AttributeError(f"graph has no component, group or export named '{name}'")

    def node(self, name: str, comp: Component) -> Component:
        """Add a component instance under ``name``."""
        if comp.graph is not None and comp.graph is not self:
            raise GraphError(f"component '{comp.name}' already belongs to another graph")
        comp.name = name
        comp.graph = self
        self.nodes[name] = comp
        return comp

    def _connect(self, source: Any, target: Any, batch_size: int | None) -> None:
        from ._groups import resolve_ports
        from ._typecheck import check_connection

        srcs = resolve_ports(source, OutPort, "source")
        dsts = resolve_ports(target, InPort, "target")
        for s in srcs:
            for d in dsts:
                check_connection(s, d)
        root = self._root()
        for p in (*srcs, *dsts):
            graph = p.component.graph
            if graph is None:
                raise GraphError(f"{p!r} belongs to no graph; add its component first")
            if graph._root() is not root:
                raise GraphError(
                    f"cannot wire {srcs[0]!r} to {dsts[0]!r}: they belong to different graphs; "
                    "add a graph to the other as a subgraph (main.name = sub) and wire its exports"
                )
        for d in dsts:
            d.initial = NOT_SET  # a value set with '<' before connecting is cleared
            d.connected = True
            if batch_size is not None:
                d.batch_size = batch_size
        m, n = len(srcs), len(dsts)
        if m == n:
            pairs = [(s, (d,)) for s, d in zip(srcs, dsts, strict=True)]
        elif n == 1:
            pairs = [(s, (dsts[0],)) for s in srcs]
        else:
            pairs = [(s, tuple(dsts)) for s in srcs]
        root.edges.extend(Edge(s, ds) for s, ds in pairs)

    def _root(self) -> Graph:
        g = self
        while g.parent is not None:
            g = g.parent
        return g

    def export(self, port: Any, name: str) -> None:
        """Expose ``port`` (``g.comp.port`` or ``g.group.port``) as ``name`` for when this graph
        is added to another as a subgraph; exporting a name twice raises ValueError."""
        from ._subgraph import export_port

        export_port(self, port, name)

    # -- describing -----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """A JSON-compatible dict describing this graph (schema: README, "Serialization")."""
        from ._graph_json import graph_to_json

        return graph_to_json(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any] | str) -> Graph:
        """Rebuild a graph from :meth:`to_json`'s dict (or its JSON text)."""
        from ._graph_json import graph_from_json

        return graph_from_json(doc)

    def to_dot(self) -> Any:
        """A ``graphviz.Digraph`` of this graph, or None (with a warning) without graphviz."""
        from ._dot import graph_to_dot

        return graph_to_dot(self)

    # -- running --------------------------------------------------------------------------------

    def check_deadlocks(self) -> None:
        """Raise DeadlockError listing every static problem (unseeded cycles, orphans, ...)."""
        from ._deadlock import find_issues
        from .errors import DeadlockError

        issues = find_issues(self)
        if issues:
            raise DeadlockError(issues)

    def start(self, num_workers: int | None = None, **options: Any) -> None:
        """Compile the graph and start its workers; :meth:`join` waits for the result."""
        from ._run.compile import compile_plan
        from ._run.coordinator import Coordinator

        if self._run is not None:
            raise GraphError("this graph is already running; call join() first")
        self.check_deadlocks()
        plan = compile_plan(self, num_workers, **options)
        coordinator = Coordinator(plan)
        coordinator.start()
        object.__setattr__(self, "_run", coordinator)

    def join(self) -> Any:
        """Wait until the run started by :meth:`start` ends; return its report or raise its error."""
        coordinator = self._run
        if coordinator is None:
            raise GraphError("nothing to join: call start() first")
        try:
            report = coordinator.join()
        finally:
            object.__setattr__(self, "_run", None)
        return report

    def run(self, num_workers: int | None = None, **options: Any) -> Any:
        """Run the graph to completion on worker processes; return a run report.

        ``num_workers`` defaults to ``min(cpu_count, number of components)``. Raises a
        :class:`~cascata.errors.CascataError` subclass naming what failed.
        """
        self.start(num_workers, **options)
        return self.join()


def _is_port_handle(value: Any) -> bool:
    return isinstance(value, InPort | OutPort) or hasattr(value, "_resolve_ports")


def _bind_in_caller(name: str, obj: Any, depth: int) -> None:
    """Bind ``name`` in the namespace of the code that wrote ``g.name = ...`` (module level: its
    globals, as cascata 0.1 did; inside a function the binding is not visible to compiled code)."""
    try:
        frame = sys._getframe(depth)
    except ValueError:
        return
    frame.f_locals[name] = obj
