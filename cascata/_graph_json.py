"""JSON documents of graphs: ``g.to_json()`` and ``Graph.from_json(doc)``.

One document describes one level of nesting; subgraphs nest the same schema::

    {"nodes": {"add": {"module": "pkg.mod", "class": "Add", "group": null,
                       "inports": {"x": {"capacity": null, "initial": null, "batch_size": null}},
                       "persist": {"count": {"args": [0], "kwargs": {}}},   # only when set
                       "firing": [["x"]]}},                                 # only when declared
     "group_handles": {"ws": {"module": ..., "class": ..., "count": 3, "inports": {...},
                              "members": {"1": {"inports": {...}}}}},       # only when they differ
     "edges": [["src", "out", "ws", "x"], ...],
     "exports": {"out": ["add", "out"]},
     "subgraphs": {"prep": {...the same schema...}}}

Edge and export endpoints name, relative to their level: a component, a group alias (the whole
group, wired as ``g.ws.port`` wires it), a subgraph with one of its exports, or as a last resort a
single group member or a nested copy (``ws_0``, ``inner_a``) when only that one was wired. Values
(initial values, persist arguments) are JSON values; tuples, sets, bytes, non-finite floats and
dicts with non-string keys are tagged (``{"$tuple": [...]}``). An initial value JSON cannot hold
is refused, naming the port; persist arguments JSON cannot hold are runtime objects (a Manager
list, an open file): that persist's arguments are left out, to be set again with ``<``.
"""

from __future__ import annotations

import importlib
import json
from collections import Counter, deque
from typing import Any

from ._groups import GroupPort
from ._json_values import decode_value, encode_value
from ._subgraph import Level, concrete_ports, export_port, level_of
from .component import Component
from .errors import GraphError
from .port import NOT_SET, InPort, OutPort

_GRAPH_KEYS = ("nodes", "edges", "group_handles", "exports", "subgraphs")
_NODE_KEYS = ("module", "class", "group", "inports", "persist", "firing")
_GROUP_KEYS = ("module", "class", "count", "inports", "persist", "firing", "members")
_INPORT_KEYS = ("capacity", "initial", "batch_size")


# -- to_json ------------------------------------------------------------------------------------


def graph_to_json(graph: Any) -> dict[str, Any]:
    """The JSON document of ``graph`` (module docstring)."""
    return _level_doc(level_of(graph))


def _level_doc(level: Level) -> dict[str, Any]:
    index = _handle_index(level)
    return {
        "nodes": {n: _node_doc(c) for n, c in level.nodes.items()},
        "edges": _logical_edges(level, index),
        "group_handles": {a: _group_doc(g) for a, g in level.groups.items()},
        "exports": {n: _export_ref(n, p, index) for n, p in level.exports.items()},
        "subgraphs": {n: _level_doc(child) for n, child in level.children.items()},
    }


def _class_ref(cls: type, who: str) -> dict[str, str]:
    if "<locals>" in cls.__qualname__:
        raise GraphError(
            f"to_json: {who} is a {cls.__qualname__}, defined inside a function; from_json finds "
            "components by module and name, so define it at module level"
        )
    return {"module": cls.__module__, "class": cls.__qualname__}


def _node_doc(comp: Component) -> dict[str, Any]:
    return {**_class_ref(type(comp), f"node '{comp.name}'"), "group": None, **_state_doc(comp)}


def _group_doc(group: Any) -> dict[str, Any]:
    states = [_state_doc(m) for m in group.members]
    doc = {
        **_class_ref(group.comp_cls, f"group '{group.name}'"),
        "count": group.count,
        **states[0],
    }
    members = {str(i): s for i, s in enumerate(states) if i and s != states[0]}
    if members:
        doc["members"] = members
    return doc


def _state_doc(comp: Component) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "inports": {
            p.name: {
                # null: none given, the runtime chooses (not the same as an exact 10)
                "capacity": p.given_capacity,
                "initial": None
                if p.initial is NOT_SET
                else encode_value(p.initial, f"the initial value of inport '{p.full_name}'"),
                "batch_size": p.batch_size,
            }
            for p in comp.inports
        }
    }
    persist = {}
    for p in comp.persists:
        if p.args or p.kwargs:
            try:
                persist[p.name] = {
                    "args": [encode_value(a, p.name) for a in p.args],
                    "kwargs": {k: encode_value(v, p.name) for k, v in p.kwargs.items()},
                }
            except GraphError:
                # A runtime object (a Manager list, an open file): left out, as cascata 0.1.8
                # did, and set on the rebuilt graph with '<', which sets all arguments at once.
                pass
    if persist:
        doc["persist"] = persist
    if comp._firing:
        doc["firing"] = [list(ports) for ports, _fires in comp._firing]
    return doc


# -- edges by alias -----------------------------------------------------------------------------

# A wiring handle seen from one level: (endpoint name, port name, the concrete ports it wires).
_Handle = tuple[str, str, tuple[Any, ...]]


def _handle_index(level: Level) -> dict[int, list[_Handle]]:
    """For every port in scope, the handles that wire it, broadest first: a subgraph's export,
    then a group port, then the single port."""
    handles: list[_Handle] = []
    for sub_name, child in level.children.items():
        for export, port in child.exports.items():
            handles.append((sub_name, export, tuple(concrete_ports(port))))
    for alias, group in level.scope_groups.items():
        for pname, port in group.members[0]._ports.items():
            if isinstance(port, InPort | OutPort):
                handles.append((alias, pname, tuple(m._ports[pname] for m in group.members)))
    for cname, comp in level.scope_nodes.items():
        for port in [*comp.inports, *comp.outports]:
            handles.append((cname, port.name, (port,)))
    index: dict[int, list[_Handle]] = {}
    for handle in handles:
        for port in handle[2]:
            index.setdefault(id(port), []).append(handle)
    return index


def _key(src: Any, dsts: tuple[Any, ...]) -> tuple[int, tuple[int, ...]]:
    return id(src), tuple(id(d) for d in dsts)


def _expand(srcs: tuple[Any, ...], dsts: tuple[Any, ...]) -> list[tuple[int, tuple[int, ...]]]:
    """The edges ``srcs >> dsts`` records (the rule of Graph._connect)."""
    if len(srcs) == len(dsts):
        return [_key(s, (d,)) for s, d in zip(srcs, dsts, strict=True)]
    return [_key(s, dsts) for s in srcs]


def _logical_edges(level: Level, index: dict[int, list[_Handle]]) -> list[list[str]]:
    """The level's edges as ``[src, src_port, dst, dst_port]``, groups and exports by name.

    Walking the recorded edges in order, the first one not yet explained picks the broadest
    wiring whose first recorded edge it is and whose other edges are all still unexplained;
    those are then explained by their earliest occurrences. Rebuilding replays the wirings in
    this order: each wiring's first edge then meets the same choice among the same unexplained
    edges, so the list comes back unchanged (the round trip is stable).
    """
    pending: dict[Any, deque[int]] = {}
    for i, edge in enumerate(level.edges):
        pending.setdefault(_key(edge.src, edge.dsts), deque()).append(i)
    result = []
    for i, edge in enumerate(level.edges):
        key = _key(edge.src, edge.dsts)
        if not pending[key] or pending[key][0] != i:
            continue  # explained by an earlier wiring
        for src in index.get(id(edge.src), []):
            dst, expansion = _fit_target(src, edge, key, index, pending)
            if dst is not None:
                for k in expansion:
                    pending[k].popleft()
                result.append([src[0], src[1], dst[0], dst[1]])
                break
        else:
            raise GraphError(
                f"to_json: the edge {edge.src!r} -> {list(edge.dsts)} leaves the graph; wire only "
                "ports of this graph's components"
            )
    return result


def _fit_target(
    src: _Handle, edge: Any, key: Any, index: dict[int, list[_Handle]], pending: dict[Any, deque]
) -> tuple[_Handle | None, list[Any]]:
    for dst in index.get(id(edge.dsts[0]), []):
        expansion = _expand(src[2], dst[2])
        needed = Counter(expansion)
        if expansion[0] == key and all(len(pending.get(k, ())) >= n for k, n in needed.items()):
            return dst, expansion
    return None, []


def _export_ref(name: str, port: Any, index: dict[int, list[_Handle]]) -> list[str]:
    ports = tuple(concrete_ports(port))
    for handle in index.get(id(ports[0]), []):
        if handle[2] == ports:
            return [handle[0], handle[1]]
    raise GraphError(f"to_json: export '{name}' ({port!r}) is not a port of this graph")


# -- from_json ----------------------------------------------------------------------------------


def graph_from_json(doc: Any) -> Any:
    """Rebuild the graph that :func:`graph_to_json` described."""
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except ValueError as exc:
            raise GraphError(f"from_json: the text is not JSON ({exc})") from exc
    return _build(doc, "")


def _build(doc: Any, path: str) -> Any:
    from .graph import Graph

    _check_keys(doc, path, required=("nodes", "edges"), known=_GRAPH_KEYS)
    graph = Graph()
    for name, sub_doc in _items(doc, "subgraphs", path):
        _add(graph, name, _build(sub_doc, _at(path, "subgraphs", name)), _at(path, "subgraphs", name))
    for name, node in _items(doc, "nodes", path):
        where = _at(path, "nodes", name)
        _check_keys(node, where, required=("module", "class"), known=_NODE_KEYS)
        if node.get("group") is not None:
            raise _bad(f"{where}.group", "must be null: groups are listed under group_handles")
        _add(graph, name, _locate(node, where), where)
    for alias, group in _items(doc, "group_handles", path):
        where = _at(path, "group_handles", alias)
        _check_keys(group, where, required=("module", "class", "count"), known=_GROUP_KEYS)
        count = group["count"]
        if type(count) is not int or count < 1:
            raise _bad(f"{where}.count", f"expected a positive integer, got {count!r}")
        _add(graph, alias, _locate(group, where) * count, where)
    for i, edge in enumerate(_expect(doc["edges"], list, _join(path, "edges"))):
        _add_edge(graph, edge, f"{_join(path, 'edges')}[{i}]")
    for name, ref in _items(doc, "exports", path):
        where = _at(path, "exports", name)
        if not isinstance(ref, list) or len(ref) != 2:
            raise _bad(where, "expected [component, port]")
        _wrap(export_port, where, graph, _endpoint(graph, ref[0], ref[1], None, where), name)
    _apply_states(graph, doc, "", path)
    return graph


def _add(graph: Any, name: str, value: Any, where: str) -> None:
    if not name.isidentifier():
        raise _bad(where, f"{name!r} is not a valid name; names are Python identifiers")
    _wrap(graph._add, where, name, value)


def _wrap(func: Any, where: str, *args: Any) -> Any:
    try:
        return func(*args)
    except (GraphError, TypeError, ValueError) as exc:
        raise _bad(where, str(exc)) from exc


def _locate(entry: dict[str, Any], where: str) -> type:
    module_name = _expect(entry["module"], str, f"{where}.module")
    qualname = _expect(entry["class"], str, f"{where}.class")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise _bad(f"{where}.module", f"cannot import module {module_name!r} ({exc})") from exc
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise _bad(f"{where}.class", f"module {module_name!r} has no {qualname!r}")
    if not (isinstance(obj, type) and issubclass(obj, Component)):
        raise _bad(f"{where}.class", f"{module_name}.{qualname} is not a cascata component")
    return obj


def _add_edge(graph: Any, edge: Any, where: str) -> None:
    if not isinstance(edge, list) or len(edge) != 4 or not all(isinstance(s, str) for s in edge):
        raise _bad(where, "expected [src, src_port, dst, dst_port], four strings")
    src = _endpoint(graph, edge[0], edge[1], "out", where)
    dst = _endpoint(graph, edge[2], edge[3], "in", where)
    _wrap(graph._connect, where, src, dst, None)


def _endpoint(graph: Any, name: Any, port: Any, kind: str | None, where: str) -> Any:
    if not isinstance(name, str) or not isinstance(port, str):
        raise _bad(where, f"expected names, got {name!r} and {port!r}")
    found: Any = None
    if name in graph._subgraphs:
        found = graph._subgraphs[name]._exports.get(port)
    elif name in graph._group_handles:
        group = graph._group_handles[name]
        if port in group.members[0]._ports:
            found = GroupPort(group, port)
    elif name in graph._nodes:
        found = graph._nodes[name]._ports.get(port)
    else:
        raise _bad(where, f"no component, group or subgraph named {name!r}")
    wanted = {"in": (InPort,), "out": (OutPort,), None: (InPort, OutPort)}[kind]
    ports = concrete_ports(found) if found is not None else []
    if not ports or not all(isinstance(p, wanted) for p in ports):
        what = {"in": "input port", "out": "output port", None: "port"}[kind]
        raise _bad(where, f"{name!r} has no {what} named {port!r}")
    return found


# -- per-component state ------------------------------------------------------------------------


def _apply_states(graph: Any, doc: dict[str, Any], prefix: str, path: str) -> None:
    """Set ports, persists and firing groups after all wiring (wiring clears initial values, so
    this also runs again for nested levels when an outer level wired their exports)."""
    for name, node in _items(doc, "nodes", path):
        _apply_state(graph._nodes[prefix + name], node, _at(path, "nodes", name))
    for alias, group in _items(doc, "group_handles", path):
        where = _at(path, "group_handles", alias)
        members = graph._group_handles[prefix + alias].members
        for member in members:
            _apply_state(member, group, where)
        overrides = _expect(group.get("members", {}), dict, f"{where}.members")
        for index, state in overrides.items():
            at = f"{where}.members[{index!r}]"
            if not index.isdigit() or int(index) >= len(members):
                raise _bad(at, f"no member {index!r} in a group of {len(members)}")
            _check_keys(state, at, required=(), known=("inports", "persist", "firing"))
            _apply_state(members[int(index)], state, at)
    for name, sub_doc in _items(doc, "subgraphs", path):
        _apply_states(graph, sub_doc, f"{prefix}{name}_", _at(path, "subgraphs", name))


def _apply_state(comp: Component, state: dict[str, Any], where: str) -> None:
    for pname, spec in _expect(state.get("inports", {}), dict, f"{where}.inports").items():
        _apply_inport(comp, pname, spec, f"{where}.inports[{pname!r}]")
    for pname, spec in _expect(state.get("persist", {}), dict, f"{where}.persist").items():
        at = f"{where}.persist[{pname!r}]"
        persist = comp._ports.get(pname)
        if persist is None or persist not in comp.persists:
            raise _bad(at, f"{type(comp).__name__} has no persist {pname!r}")
        _check_keys(spec, at, required=(), known=("args", "kwargs"))
        args = decode_value(_expect(spec.get("args", []), list, f"{at}.args"), f"{at}.args")
        kwargs = decode_value(_expect(spec.get("kwargs", {}), dict, f"{at}.kwargs"), f"{at}.kwargs")
        if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
            raise _bad(f"{at}.kwargs", "expected an object of keyword arguments")
        persist.set_args(*args, **kwargs)
    if "firing" in state:
        comp._firing = [
            (tuple(_inport_names(comp, group, f"{where}.firing[{i}]")), True)
            for i, group in enumerate(_expect(state["firing"], list, f"{where}.firing"))
        ]


def _apply_inport(comp: Component, pname: str, spec: Any, where: str) -> None:
    port = comp._ports.get(pname)
    if not isinstance(port, InPort):
        names = ", ".join(p.name for p in comp.inports) or "none"
        raise _bad(where, f"{type(comp).__name__} has no inport {pname!r} (inports: {names})")
    _check_keys(spec, where, required=(), known=_INPORT_KEYS)
    if "capacity" in spec:
        capacity = spec["capacity"]
        if capacity is not None and (type(capacity) is not int or capacity < 1):
            raise _bad(
                f"{where}.capacity", f"expected null (none given) or a positive integer, got {capacity!r}"
            )
        port.given_capacity = capacity
    if "batch_size" in spec:
        size = spec["batch_size"]
        if size is not None and (type(size) is not int or size < 0):
            raise _bad(f"{where}.batch_size", f"expected null or an integer >= 0, got {size!r}")
        port.batch_size = size
    if "initial" in spec:
        port.initialize(decode_value(spec["initial"], f"{where}.initial"))


def _inport_names(comp: Component, group: Any, where: str) -> list[str]:
    names = _expect(group, list, where)
    for name in names:
        if not isinstance(comp._ports.get(name), InPort):
            raise _bad(where, f"{type(comp).__name__} has no inport {name!r}")
    return names


# -- document checks ----------------------------------------------------------------------------


def _bad(path: str, problem: str) -> GraphError:
    return GraphError(f"from_json: {path or 'document'}: {problem}")


def _expect(value: Any, kind: type, path: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = {str: "a string", list: "a list", dict: "an object", int: "an integer"}
        raise _bad(path, f"expected {names.get(kind, kind.__name__)}, got {type(value).__name__}")
    return value


def _check_keys(entry: Any, path: str, required: tuple[str, ...], known: tuple[str, ...]) -> None:
    _expect(entry, dict, path)
    for key in required:
        if key not in entry:
            raise _bad(_join(path, key), "missing")
    unknown = sorted(set(entry) - set(known))
    if unknown:
        raise _bad(_join(path, unknown[0]), f"unknown key (known: {', '.join(known)})")


def _items(doc: dict[str, Any], key: str, path: str) -> list[tuple[str, Any]]:
    return list(_expect(doc.get(key, {}), dict, _join(path, key)).items())


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _at(path: str, table: str, name: str) -> str:
    return f"{_join(path, table)}[{name!r}]"
