"""Subgraphs: ``main.prep = sub`` copies ``sub`` into ``main`` under the prefix ``prep_``.

The copy is flat: every component of ``sub`` (group members included) becomes a node of ``main``
named ``prep_<name>``, each group ``ws`` becomes the group ``prep_ws``, and the edges of ``sub``
become edges of ``main``. ``sub`` itself is not touched and can be added again (another copy).
``main.prep`` is a :class:`SubgraphHandle`: its attributes are the ports that ``sub`` exported,
on the copies. The handle also remembers which nodes, groups and edges came from the subgraph, so
that ``to_json`` and ``to_dot`` can show the nesting the user wrote (:func:`level_of`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._groups import ComponentGroup, GroupPort
from .component import Component
from .errors import GraphError
from .port import InPort, OutPort


class SubgraphHandle:
    """A subgraph copied into a graph; ``handle.name`` is the port exported as ``name``.

    Exported ports work on either side of ``>>``, with ``<`` and with batching, exactly like the
    port (or group port) they stand for.
    """

    def __init__(
        self,
        name: str,
        prefix: str,
        nodes: list[Component],
        groups: list[ComponentGroup],
        edges: list[Any],
        exports: dict[str, Any],
        children: dict[str, SubgraphHandle],
    ) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_prefix", prefix)  # the copies' name prefix in the graph
        object.__setattr__(self, "_nodes", nodes)  # every copied component, nested ones included
        object.__setattr__(self, "_groups", groups)
        object.__setattr__(self, "_edges", edges)
        object.__setattr__(self, "_exports", exports)
        object.__setattr__(self, "_children", children)

    def __getattr__(self, name: str) -> Any:
        exports = self.__dict__.get("_exports", {})
        if not name.startswith("_") and name in exports:
            return exports[name]
        raise AttributeError(
            f"subgraph '{self.__dict__.get('_name', '?')}' exports no port '{name}' "
            f"(exports: {', '.join(exports) or 'none'}); export it with sub.export(port, '{name}')"
        )

    def __setattr__(self, name: str, value: Any) -> None:
        if value is self._exports.get(name, _MISSING):
            return  # ``main.prep.out >>= x`` assigns the exported port back to itself
        raise GraphError(
            f"cannot assign to '{self._name}.{name}': a subgraph handle only exposes its exported "
            "ports; wire them with '>>' or set an initial value with '<'"
        )

    def __dir__(self) -> list[str]:
        return sorted(self._exports)

    def __repr__(self) -> str:
        return f"<subgraph {self._name} exports={sorted(self._exports)}>"


_MISSING = object()


# -- export -------------------------------------------------------------------------------------


def export_port(graph: Any, port: Any, name: str) -> None:
    """Record ``port`` (an in/out port or group port of ``graph``) as exported under ``name``."""
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
        raise GraphError(
            f"export name {name!r} must be a Python identifier that does not start with '_'"
        )
    if name in graph._exports:
        raise ValueError(
            f"a port is already exported as '{name}' ({graph._exports[name]!r}); "
            "choose another export name"
        )
    if isinstance(port, InPort | OutPort):
        owner = port.component.graph
    elif isinstance(port, GroupPort):
        owner = port.group.graph
    else:
        raise GraphError(
            f"export({port!r}, '{name}'): only a component's port or a group's port "
            "(g.comp.port, g.group.port) can be exported"
        )
    if owner is not graph:
        raise GraphError(
            f"export({port!r}, '{name}'): that port belongs to another graph; export ports of "
            "this graph's own components"
        )
    graph._exports[name] = port


# -- copying a subgraph into a graph ----------------------------------------------------------


def add_subgraph(parent: Any, name: str, sub: Any) -> SubgraphHandle:
    """Copy ``sub`` into ``parent`` with names prefixed ``name_``; return the handle."""
    if sub is parent:
        raise GraphError(f"cannot add a graph to itself (g.{name} = g)")
    prefix = f"{name}_"
    _check_copyable(parent, prefix, sub)
    copier = _Copier(prefix)
    for alias, group in sub._group_handles.items():
        copy = ComponentGroup(group.comp_cls, group.count)._attach(parent, prefix + alias)
        copier.groups[id(group)] = copy
        for old, new in zip(group.members, copy.members, strict=True):
            copier.comps[id(old)] = new
    for cname, comp in sub._nodes.items():
        if id(comp) not in copier.comps:
            copier.comps[id(comp)] = parent.node(prefix + cname, type(comp)(prefix + cname))
    for comp in sub._nodes.values():
        _copy_state(comp, copier.comps[id(comp)])
    edges = parent._root()._edges
    for edge in sub._edges:
        new_edge = type(edge)(copier.port(edge.src), tuple(copier.port(d) for d in edge.dsts))
        copier.edges[id(edge)] = new_edge
        edges.append(new_edge)
    handle = SubgraphHandle(
        name,
        prefix,
        nodes=[copier.comps[id(c)] for c in sub._nodes.values()],
        groups=[copier.groups[id(g)] for g in sub._group_handles.values()],
        edges=[copier.edges[id(e)] for e in sub._edges],
        exports={n: copier.port(p) for n, p in sub._exports.items()},
        children={n: copier.handle(h) for n, h in sub._subgraphs.items()},
    )
    parent._subgraphs[name] = handle
    return handle


def _check_copyable(parent: Any, prefix: str, sub: Any) -> None:
    """Refuse before changing anything: a name clash, or an edge of ``sub`` that leaves it."""
    inside = {id(c) for c in sub._nodes.values()}
    for edge in sub._edges:
        for port in (edge.src, *edge.dsts):
            if id(port.component) not in inside:
                raise GraphError(
                    f"the subgraph wires {port!r}, which belongs to another graph; a subgraph can "
                    "only be copied when all its edges stay inside it"
                )
    wanted = [prefix + n for n in sub._nodes] + [prefix + a for a in sub._group_handles]
    taken = sorted(
        n for n in wanted if n in parent._nodes or n in parent._group_handles or n in parent._subgraphs
    )
    if taken:
        raise GraphError(
            f"adding the subgraph as '{prefix[:-1]}' would create {taken}, which the graph already "
            "has; choose another subgraph name"
        )


@dataclass
class _Copier:
    """Maps the objects of a subgraph to their copies (by id: ports compare by identity)."""

    prefix: str
    comps: dict[int, Component] = field(default_factory=dict)
    groups: dict[int, ComponentGroup] = field(default_factory=dict)
    edges: dict[int, Any] = field(default_factory=dict)

    def port(self, port: Any) -> Any:
        if isinstance(port, GroupPort):
            return GroupPort(self.groups[id(port.group)], port.name)
        return self.comps[id(port.component)]._ports[port.name]

    def handle(self, handle: SubgraphHandle) -> SubgraphHandle:
        """The copy of a nested subgraph's handle, pointing at the new copies."""
        return SubgraphHandle(
            handle._name,
            self.prefix + handle._prefix,
            nodes=[self.comps[id(c)] for c in handle._nodes],
            groups=[self.groups[id(g)] for g in handle._groups],
            edges=[self.edges[id(e)] for e in handle._edges],
            exports={n: self.port(p) for n, p in handle._exports.items()},
            children={n: self.handle(h) for n, h in handle._children.items()},
        )


def _copy_state(old: Component, new: Component) -> None:
    """Initial values, capacities, batch sizes, firing groups and persist arguments."""
    for port in old.inports:
        copy = new._ports[port.name]
        copy.given_capacity = port.given_capacity
        copy.initial = port.initial
        copy.batch_size = port.batch_size
        copy.connected = port.connected
    for persist in old.persists:
        copy = new._ports[persist.name]
        copy.args = tuple(persist.args)
        copy.kwargs = dict(persist.kwargs)
    new._firing = list(old._firing)


# -- the nesting, one level at a time ---------------------------------------------------------


@dataclass
class Level:
    """One level of a graph's nesting: what the user added to it directly.

    ``nodes``, ``groups`` and ``edges`` are the level's own (not those of nested subgraphs);
    ``scope_nodes`` and ``scope_groups`` hold everything under the level, nested copies and group
    members included, by their name relative to the level (``inner_a`` for ``prep_inner_a`` seen
    from ``prep``).
    """

    prefix: str
    nodes: dict[str, Component]
    groups: dict[str, ComponentGroup]
    edges: list[Any]
    exports: dict[str, Any]
    children: dict[str, Level]
    scope_nodes: dict[str, Component]
    scope_groups: dict[str, ComponentGroup]

    def local(self, flat_name: str) -> str:
        return flat_name[len(self.prefix) :]


def level_of(source: Any) -> Level:
    """The top level of a Graph, or the level of a SubgraphHandle."""
    if isinstance(source, SubgraphHandle):
        return _make_level(
            source._prefix, source._nodes, source._groups, source._edges, source._exports,
            source._children,
        )
    return _make_level(
        "", list(source._nodes.values()), list(source._group_handles.values()), list(source._edges),
        source._exports, source._subgraphs,
    )


def _make_level(
    prefix: str,
    comps: list[Component],
    groups: list[ComponentGroup],
    edges: list[Any],
    exports: dict[str, Any],
    handles: dict[str, SubgraphHandle],
) -> Level:
    children = {n: level_of(h) for n, h in handles.items()}
    nested_comps = {id(c) for h in handles.values() for c in h._nodes}
    nested_groups = {id(g) for h in handles.values() for g in h._groups}
    nested_edges = {id(e) for h in handles.values() for e in h._edges}
    members = {id(m) for g in groups for m in g.members}
    cut = len(prefix)
    return Level(
        prefix=prefix,
        nodes={
            c.name[cut:]: c for c in comps if id(c) not in nested_comps and id(c) not in members
        },
        groups={g.name[cut:]: g for g in groups if id(g) not in nested_groups},
        edges=[e for e in edges if id(e) not in nested_edges],
        exports=dict(exports),
        children=children,
        scope_nodes={c.name[cut:]: c for c in comps},
        scope_groups={g.name[cut:]: g for g in groups},
    )


def concrete_ports(handle: Any) -> list[Any]:
    """The ports behind a port or group port."""
    if isinstance(handle, GroupPort):
        return handle._resolve_ports()
    return [handle]
