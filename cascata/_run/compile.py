"""Compile a Graph into a Plan: number the ports and edges, resolve firing rules, place."""

from __future__ import annotations

import dataclasses
import math
import os
import uuid
from typing import Any

from .._plan import (
    LIVENESS_LIMIT,
    LOCAL,
    ComponentPlan,
    EdgePlan,
    FiringGroup,
    InPortPlan,
    OutPortPlan,
    Plan,
    Settings,
)
from ..errors import GraphError
from ..log import log
from ..port import NOT_SET
from ..transport.codec import DEFAULT_MAX_ITEM_BYTES
from ..worker.firing import resolve_groups
from ..worker.ports import SMALL_ITEM_SLACK
from .placement import assign, available_cpus, compact, pin_to_hosts

_OPTIONS = {"max_item_bytes", "liveness_timeout"}
# Plain items beyond the credit window a publisher may send to one member of a group: enough to
# keep a remote member busy over a credit round trip, few enough that no member hoards work.
DISTRIBUTING_SLACK = 96


def compile_plan(
    graph: Any,
    num_workers: int | None = None,
    collects: dict[int, int] | None = None,
    hosts: list[tuple[str, int]] | None = None,
    pin: dict[str, str] | None = None,
    **options: Any,
) -> Plan:
    """The plan for running ``graph`` on ``num_workers`` local workers; ``collects`` maps
    ``id(outport)`` to the number of the caller's list collecting it (see collect_sinks)."""
    unknown = set(options) - _OPTIONS
    if unknown:
        raise TypeError(f"run() got unknown option(s) {sorted(unknown)}; known: {sorted(_OPTIONS)}")
    settings = Settings(
        max_item_bytes=_max_item_bytes(options.get("max_item_bytes")),
        liveness_limit=_liveness_timeout(options.get("liveness_timeout")),
        log_level=log.getEffectiveLevel(),
    )
    comps = list(graph._nodes.values())
    if not comps:
        raise GraphError("the graph has no components; add some with g.name = Component")
    workers = _num_workers(num_workers, len(comps))
    slots: tuple[str, ...] = ()
    if hosts:
        slots = host_slots(hosts, num_workers, len(comps))
        workers = len(slots)

    raw_edges: list[tuple[int, Any, Any]] = []
    routes: dict[int, list[tuple[int, ...]]] = {}
    publishers: dict[int, list[int]] = {}
    for edge in graph._edges:
        route = []
        for dst in edge.dsts:
            edge_id = len(raw_edges)
            raw_edges.append((edge_id, edge.src, dst))
            publishers.setdefault(id(dst), []).append(edge_id)
            route.append(edge_id)
        routes.setdefault(id(edge.src), []).append(tuple(route))

    # edges of routes into a component group (each item goes to one member)
    distributing = {e for rs in routes.values() for r in rs if len(r) > 1 for e in r}
    groups = {c.name: c.group_name for c in comps if c.group_name is not None}
    pairs = [(src.component.name, dst.component.name) for _, src, dst in raw_edges]
    placement = assign([c.name for c in comps], pairs, workers, groups, slots)
    if pin:
        pins = _resolve_pins(pin, comps, slots or (LOCAL,) * workers)
        placement = pin_to_hosts(placement, slots or (LOCAL,) * workers, pins, pairs, groups)
    placement, slots = compact(placement, slots)
    workers = len(set(placement.values()))

    edges = tuple(
        EdgePlan(
            edge_id=edge_id,
            src_component=src.component.name,
            src_port=src.name,
            dst_component=dst.component.name,
            dst_port=dst.name,
            src_worker=placement[src.component.name],
            dst_worker=placement[dst.component.name],
            window=max(1, -(-dst.capacity // len(publishers[id(dst)]))),
            slack=_slack(dst, edge_id in distributing),
        )
        for edge_id, src, dst in raw_edges
    )
    plans = tuple(
        _component(c, placement[c.name], publishers, routes, collects or {}) for c in comps
    )
    edges = _mark_inline(edges, plans, distributing)
    by_worker: dict[int, tuple[str, ...]] = {}
    for c in plans:
        by_worker[c.worker] = (*by_worker.get(c.worker, ()), c.label)
    return Plan(uuid.uuid4().hex, plans, edges, workers, settings, by_worker, slots)


def _slack(port: Any, distributing: bool) -> int:
    """Small items a publisher may send beyond its window: none when the capacity was given
    (it is exact); into a group member a few, enough to keep a remote member busy over a
    credit round trip, little enough that no member hoards queued work; else many, within
    the byte budget a RemoteEdge keeps."""
    if port.given_capacity is not None:
        return 0
    return DISTRIBUTING_SLACK if distributing else SMALL_ITEM_SLACK


def _mark_inline(
    edges: tuple[EdgePlan, ...], comps: tuple[ComponentPlan, ...], distributing: set[int]
) -> tuple[EdgePlan, ...]:
    """Flag edges whose consumer can run inside the publisher's send (see EdgePlan.inline)."""
    by_name = {c.name: c for c in comps}
    out = []
    for e in edges:
        dst = by_name[e.dst_component]
        port = next(p for p in dst.inports if p.name == e.dst_port)
        inline = (
            e.src_worker == e.dst_worker
            and e.src_component != e.dst_component
            and e.edge_id not in distributing
            and dst.groups == (FiringGroup((e.dst_port,), True),)
            and port.publishers == (e.edge_id,)
            and port.batch_size is None
            and not port.has_initial
        )
        out.append(dataclasses.replace(e, inline=True) if inline else e)
    return tuple(out)


def _component(
    comp: Any,
    worker: int,
    publishers: dict[int, list[int]],
    routes: dict[int, list[tuple[int, ...]]],
    collects: dict[int, int],
) -> ComponentPlan:
    inports = []
    for port in comp.inports:
        has_initial = port.initial is not NOT_SET
        inports.append(
            InPortPlan(
                name=port.name,
                capacity=port.capacity,
                batch_size=port.batch_size,
                publishers=tuple(publishers.get(id(port), ())),
                has_initial=has_initial,
                initial=port.initial if has_initial else None,
                exact=port.given_capacity is not None,
            )
        )
    outports = tuple(
        OutPortPlan(p.name, tuple(routes.get(id(p), ())), collects.get(id(p))) for p in comp.outports
    )
    streaming = [(p.name, p.constant) for p in inports]
    return ComponentPlan(
        name=comp.name,
        class_name=type(comp).__name__,
        worker=worker,
        runner=comp._runner,
        inports=tuple(inports),
        outports=outports,
        persists=tuple((p.name, p.factory, p.args, p.kwargs) for p in comp.persists),
        groups=resolve_groups(streaming, comp._firing),
    )


def collect_sinks(graph: Any) -> tuple[dict[int, int], list[list[Any]]]:
    """The caller's lists of ``g.collect`` (each numbered once), and for every collected
    outport (by ``id``) the number of its list."""
    sinks: list[list[Any]] = []
    numbers: dict[int, int] = {}
    of_port: dict[int, int] = {}
    for port, items in graph._collects:
        number = numbers.setdefault(id(items), len(sinks))
        if number == len(sinks):
            sinks.append(items)
        of_port[id(port)] = number
    return of_port, sinks


def _resolve_pins(pin: Any, comps: list[Any], slots: tuple[str, ...]) -> dict[str, str]:
    """``pin`` ({component or group alias: host}) per component name, checked against the graph
    and the run's hosts before anything starts."""
    if not isinstance(pin, dict):
        raise TypeError(f"pin must be a dict {{component: host}}, got {type(pin).__name__}")
    names = {c.name for c in comps}
    members: dict[str, list[str]] = {}
    for c in comps:
        if c.group_name is not None:
            members.setdefault(c.group_name, []).append(c.name)
    hosts = sorted(set(slots))
    out: dict[str, str] = {}
    for key, host in pin.items():
        if key not in names and key not in members:
            raise GraphError(
                f"pin names {key!r}, which is no component or group of this graph; "
                f"components: {sorted(names)}"
            )
        if host not in hosts:
            raise ValueError(
                f"pin puts {key!r} on {host!r}, which this run does not have; its hosts: {hosts}. "
                "Add it to workers=[...] (or CASCATA_WORKERS)"
            )
        for name in members.get(key, [key]):
            out[name] = host
    return out


def host_slots(
    hosts: list[tuple[str, int]], requested: int | None, n_components: int
) -> tuple[str, ...]:
    """The host of each worker index: the hosts' offered processes taken in turn (A, B, A, B,
    ...), so that placement, which spreads a group's members over consecutive workers, spreads
    them over hosts; as many as the components can use, or ``requested``."""
    offered = sum(n for _, n in hosts)
    limit = min(offered, n_components if requested is None else _num_workers(requested, n_components))
    slots: list[str] = []
    left = dict(hosts)
    while len(slots) < limit:
        for address, _ in hosts:
            if left[address] > 0 and len(slots) < limit:
                slots.append(address)
                left[address] -= 1
    return tuple(slots)


def _num_workers(requested: int | None, n_components: int) -> int:
    if requested is None:
        return max(1, min(available_cpus(), n_components))
    if not isinstance(requested, int) or isinstance(requested, bool) or requested < 1:
        raise ValueError(f"num_workers must be a positive integer, got {requested!r}")
    # More workers than components would only sit idle.
    return min(requested, n_components)


def _max_item_bytes(value: Any) -> int:
    if value is None:
        env = os.environ.get("CASCATA_MAX_ITEM_BYTES")
        if env is None:
            return DEFAULT_MAX_ITEM_BYTES
        value = env
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"max_item_bytes must be an integer number of bytes, got {value!r}") from None
    if limit < 1:
        raise ValueError(f"max_item_bytes must be positive, got {limit}")
    return limit


def _liveness_timeout(value: Any) -> float:
    """Seconds a worker may neither answer nor use CPU before it counts as frozen."""
    if value is None:
        return LIVENESS_LIMIT
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"liveness_timeout must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"liveness_timeout must be a positive, finite number of seconds, got {value!r}")
    return float(value)
