"""Graphs: containers of named component instances and the edges between their ports.

``g.name = Component`` adds an instance (and binds ``name`` in the caller's namespace, as cascata
0.1 did); ``a.out >> b.inp`` records an edge. Nothing runs until :meth:`Graph.run`.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import warnings
from dataclasses import dataclass
from typing import Any

from ._names import bind_in_caller, check_persists, stacklevel_outside_cascata
from .component import Component
from .errors import GraphError
from .port import NOT_SET, InPort, OutPort, check_direction, describe


@dataclass(frozen=True)
class Edge:
    """One publisher feeding one or more input ports.

    With one destination every item goes there; with several (an edge into a component group)
    each item goes to exactly one of them.
    """

    src: OutPort
    dsts: tuple[InPort, ...]


class Graph:
    """A dataflow graph of component instances; see the README for the DSL.

    Any identifier not starting with '_' names a component, the names of this class's own methods
    and tables included (``g.join = Join``, as in cascata 0.1): such a component shadows the
    method on its graph only, and the method stays reachable as ``Graph.join(g)``. So cascata's
    own code keeps its state in '_' attributes and calls methods through the class.
    """

    def __init__(self) -> None:
        state = self.__dict__
        state["_nodes"] = {}
        state["_edges"] = []
        state["_group_handles"] = {}
        state["_exports"] = {}
        state["_subgraphs"] = {}
        state["_run"] = None
        state["_parent"] = None
        state["_collects"] = []  # (outport, the caller's list), see collect()

    @property
    def nodes(self) -> dict[str, Component]:
        """Every component instance by name, group members and subgraph copies included."""
        return self._nodes

    @property
    def edges(self) -> list[Edge]:
        """Every connection, in the order it was made."""
        return self._edges

    @property
    def group_handles(self) -> dict[str, Any]:
        """Every component group by its alias."""
        return self._group_handles

    # -- building -------------------------------------------------------------------------------

    def __getattribute__(self, name: str) -> Any:
        if name in _SHADOWABLE:  # a component named like a method or table wins on its graph
            found = _named(object.__getattribute__(self, "__dict__"), name, _OWN_TABLES)
            if found is not _MISSING:
                return found
        return object.__getattribute__(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        if name in self._exports and _is_port_handle(value):
            return  # ``g.sub.out >>= x`` assigns the export handle back to itself
        obj = self._add(name, value)
        bind_in_caller(name, obj, depth=2)

    def _add(self, name: str, value: Any) -> Any:
        from ._groups import ComponentGroup

        if not isinstance(name, str) or not name.isidentifier():
            raise GraphError(f"component name {name!r} must be a Python identifier")
        if name.startswith("_"):
            raise GraphError(f"component name {name!r} must not start with '_'")
        if name in self._nodes or name in self._group_handles or name in self._subgraphs:
            raise GraphError(f"graph already has a component named '{name}'; names must be unique")
        if isinstance(value, type) and issubclass(value, Component):
            return self._add_node(name, value(name))
        if isinstance(value, Component):
            return self._add_node(name, value)
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
        found = _named(self.__dict__, name, _ALL_TABLES)
        if found is _MISSING:
            raise AttributeError(f"graph has no component, group or export named '{name}'")
        return found

    def node(self, name: str, comp: Component) -> Component:
        """Add a component instance under ``name``."""
        return self._add_node(name, comp)

    def _add_node(self, name: str, comp: Component) -> Component:
        if comp.graph is not None and comp.graph is not self:
            raise GraphError(f"component '{comp.name}' already belongs to another graph")
        comp.name = name
        comp.graph = self
        self._nodes[name] = comp
        return comp

    def _connect(self, source: Any, target: Any, batch_size: int | None) -> None:
        from ._groups import resolve_ports
        from ._typecheck import check_connection

        check_direction(source, target)
        srcs = resolve_ports(source, OutPort, "source of '>>'")
        dsts = resolve_ports(target, InPort, "target of '>>'")
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
        new = [Edge(s, ds) for s, ds in pairs]
        if any(e.src is edge.src and e == edge for edge in new for e in root._edges):
            warnings.warn(
                f"{describe(source)} >> {describe(target)} is already wired; wiring it again "
                "delivers every item twice (a notebook cell run again?). Build the graph anew "
                "to wire it once",
                stacklevel=stacklevel_outside_cascata(),
            )
        root._edges.extend(new)

    def _root(self) -> Graph:
        g = self
        while g._parent is not None:
            g = g._parent
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

    def collect(self, port: Any) -> list[Any]:
        """A list that receives every item ``port`` sends during a run (``g.group.port``: every
        member's), streamed from the workers as they go; call it before :meth:`run`.

        Each run empties the list first. Items keep their send order per publisher."""
        from ._groups import resolve_ports

        ports = resolve_ports(port, OutPort, "argument of collect()")
        root = Graph._root(self)
        for p in ports:
            graph = p.component.graph
            if graph is None or Graph._root(graph) is not root:
                raise GraphError(
                    f"collect({p!r}): that port belongs to another graph; collect it on the graph "
                    "that runs it"
                )
        items: list[Any] = []
        root._collects.extend((p, items) for p in ports)
        return items

    def start(
        self,
        num_workers: int | None = None,
        *,
        timeout: float | None = None,
        progress: bool | None = None,
        **options: Any,
    ) -> None:
        """Compile the graph and start its workers; :meth:`join` waits for the result.

        ``timeout``: seconds from now after which the run is stopped and join() raises
        :class:`~cascata.errors.TimeoutError` naming the components still running.
        ``progress``: show a live view on stderr (default: when stderr is a terminal)."""
        from ._run.compile import collect_sinks, compile_plan
        from ._run.coordinator import Coordinator
        from ._run.hosts import open_hosts

        if self._run is not None:
            raise GraphError("this graph is already running; call join() first")
        Graph.check_deadlocks(self)
        check_persists(self)
        collects, sinks = collect_sinks(self)
        limit = _check_timeout(timeout)
        hosts = open_hosts(
            list(self._nodes.values()), options.pop("workers", None), options.pop("key_file", None)
        )
        offers = hosts.offers_for(num_workers) if hosts else None
        pin = options.pop("pin", None)
        plan = compile_plan(self, num_workers, collects, hosts=offers, pin=pin, **options)
        for items in sinks:
            items.clear()
        coordinator = Coordinator(plan, sinks, limit, _observers(progress), hosts)
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

    def run(
        self,
        num_workers: int | None = None,
        *,
        timeout: float | None = None,
        progress: bool | None = None,
        **options: Any,
    ) -> Any:
        """Run the graph to completion on worker processes; return a run report.

        ``num_workers`` defaults to ``min(cpu_count, number of components)``; ``timeout``
        stops the run after that many seconds (TimeoutError); ``progress`` shows a live view
        on stderr (default: when stderr is a terminal). Raises a
        :class:`~cascata.errors.CascataError` subclass naming what failed. Inside a running
        asyncio loop (a notebook) this blocks that loop until the run ends; ``await
        g.run_async()`` does not.
        """
        Graph.start(self, num_workers, timeout=timeout, progress=progress, **options)
        return Graph.join(self)

    async def run_async(
        self,
        num_workers: int | None = None,
        *,
        timeout: float | None = None,
        progress: bool | None = None,
        **options: Any,
    ) -> Any:
        """``run()`` for asyncio code: the caller's loop keeps running other tasks meanwhile.

        Starting (forking the workers) and waiting happen off the loop's thread. Cancelling
        the awaiting task stops every worker, then re-raises the cancellation."""
        loop = asyncio.get_running_loop()
        start = functools.partial(
            Graph.start, self, num_workers, timeout=timeout, progress=progress, **options
        )
        await loop.run_in_executor(None, start)
        coordinator = self._run
        stopped = loop.create_future()
        coordinator.when_stopped(lambda: loop.call_soon_threadsafe(_resolve, stopped))
        try:
            await asyncio.shield(stopped)
        except asyncio.CancelledError:
            coordinator.abort()
            await loop.run_in_executor(None, coordinator.wait_stopped)
            object.__setattr__(self, "_run", None)
            raise
        return Graph.join(self)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _observers(progress: bool | None) -> Any:
    """Who watches the run: the live progress view when asked for, or by default when stderr
    is a terminal (rich is imported only then)."""
    from ._run.events import Observers

    if progress is None:
        progress = bool(getattr(sys.stderr, "isatty", lambda: False)())
    if not progress:
        return Observers()
    from ._run.progress import ProgressView

    return Observers([ProgressView()])


def _check_timeout(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ValueError(f"run(timeout={timeout!r}): give a number of seconds above 0, or None")
    return float(timeout)


def _is_port_handle(value: Any) -> bool:
    return isinstance(value, InPort | OutPort) or hasattr(value, "_resolve_ports")


_MISSING = object()
_OWN_TABLES = ("_nodes", "_group_handles", "_subgraphs")  # what ``g.name = X`` adds
_ALL_TABLES = ("_nodes", "_group_handles", "_exports", "_subgraphs")
# The public names of Graph; a component of the same name shadows them on its graph.
_SHADOWABLE = frozenset(n for n in dir(Graph) if not n.startswith("_"))


def _named(state: dict[str, Any], name: str, tables: tuple[str, ...]) -> Any:
    for table in tables:
        entries = state.get(table)
        if entries and name in entries:
            return entries[name]
    return _MISSING
