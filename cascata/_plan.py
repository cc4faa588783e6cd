"""The plan: what a compiled graph is, as plain frozen data a worker can run without the graph.

It carries user callables (runners, persist factories) and initial values as objects; shipping a
plan to another process serializes those with dill. Everything else is ints, strings and tuples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class InPortPlan:
    """An input port at run time.

    ``publishers`` are the ids of the edges that feed it; ``initial`` is meaningful only when
    ``has_initial``: a constant if there are no publishers, else a seed delivered first.
    """

    name: str
    capacity: int
    batch_size: int | None
    publishers: tuple[int, ...]
    has_initial: bool = False
    initial: Any = None

    @property
    def constant(self) -> bool:
        return self.has_initial and not self.publishers


@dataclass(frozen=True)
class EdgePlan:
    """One publisher (an outport) feeding one input port; items carry per-edge sequence numbers.

    ``window`` is the most items the publisher may have sent and the consumer not yet taken.
    """

    edge_id: int
    src_component: str
    src_port: str
    dst_component: str
    dst_port: str
    src_worker: int
    dst_worker: int
    window: int
    # Extra items beyond ``window`` a remote publisher may send while they are small (see
    # worker.ports.RemoteEdge).
    slack: int = 0
    # Same worker, and the consumer fires on this port alone with no other publisher: the
    # publisher's send runs the consumer's runner directly (no buffer, no task switch).
    inline: bool = False

    @property
    def label(self) -> str:
        return f"'{self.src_component}.{self.src_port}' -> '{self.dst_component}.{self.dst_port}'"


@dataclass(frozen=True)
class OutPortPlan:
    """An output port: each route is a tuple of edge ids; with several, each item takes one."""

    name: str
    routes: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class FiringGroup:
    """Ports read together; ``fires`` False means a listener that only updates values."""

    ports: tuple[str, ...]
    fires: bool


@dataclass(frozen=True)
class ComponentPlan:
    name: str
    class_name: str
    worker: int
    runner: Any
    inports: tuple[InPortPlan, ...]
    outports: tuple[OutPortPlan, ...]
    persists: tuple[tuple[str, Any, tuple[Any, ...], dict[str, Any]], ...]
    groups: tuple[FiringGroup, ...]

    @property
    def label(self) -> str:
        return f"{self.name}@{self.class_name}"


@dataclass(frozen=True)
class Settings:
    """Per-run knobs; every field has a safe default."""

    max_item_bytes: int
    # Send buffered small items when this many are pending on one link.
    batch_items: int = 1024
    # ... or when this many payload bytes are pending.
    batch_bytes: int = 1 << 20


@dataclass(frozen=True)
class Plan:
    run_id: str
    components: tuple[ComponentPlan, ...]
    edges: tuple[EdgePlan, ...]
    num_workers: int
    settings: Settings
    # Names of component instances per worker, for error messages.
    placement: dict[int, tuple[str, ...]] = field(default_factory=dict)

    def for_worker(self, index: int) -> tuple[ComponentPlan, ...]:
        return tuple(c for c in self.components if c.worker == index)
