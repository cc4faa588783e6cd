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
    ``exact``: the capacity was given, so no publisher may run beyond it (SPEC section 5).
    """

    name: str
    capacity: int
    batch_size: int | None
    publishers: tuple[int, ...]
    has_initial: bool = False
    initial: Any = None
    exact: bool = False

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
    # The caller's list that receives every item this port sends (g.collect), if any.
    collect: int | None = None


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


# Seconds a worker may take from its start to READY (a remote one unpickles the plan first).
START_TIMEOUT = 30.0
# Seconds between heartbeats (worker to coordinator; coordinator and daemon both ways).
HEARTBEAT_INTERVAL = 0.25
# Seconds a worker may go without answering before it counts as frozen.
LIVENESS_LIMIT = 5.0
# Seconds without a word from a daemon (or, seen from a daemon, from the coordinator) before that
# side counts as lost: several heartbeats, so one late packet is not a lost host.
HOST_TIMEOUT = 3.0
# Stop ladder: seconds to exit after FINISH or ABORT, then after SIGTERM (SIGKILL follows).
STOP_GRACE = 2.0
TERM_GRACE = 1.0


@dataclass(frozen=True)
class Settings:
    """Per-run knobs, including every timing a remote worker or daemon must agree on; every
    field has a safe default."""

    max_item_bytes: int
    # Send buffered small items when this many are pending on one link.
    batch_items: int = 1024
    # ... or when this many payload bytes are pending.
    batch_bytes: int = 1 << 20
    start_timeout: float = START_TIMEOUT
    heartbeat_interval: float = HEARTBEAT_INTERVAL
    liveness_limit: float = LIVENESS_LIMIT
    host_timeout: float = HOST_TIMEOUT
    stop_grace: float = STOP_GRACE
    term_grace: float = TERM_GRACE
    # The cascata logger's level in the caller when the run started (20: INFO): workers on every
    # host forward what it lets through, whatever their own process configured (a daemon's).
    log_level: int = 20


# The host name of workers forked by the coordinator in the caller's process.
LOCAL = "local"


@dataclass(frozen=True)
class Plan:
    run_id: str
    components: tuple[ComponentPlan, ...]
    edges: tuple[EdgePlan, ...]
    num_workers: int
    settings: Settings
    # Names of component instances per worker, for error messages.
    placement: dict[int, tuple[str, ...]] = field(default_factory=dict)
    # Where each worker runs: LOCAL (forked by the coordinator) or a daemon's HOST:PORT. Empty
    # means every worker is local.
    hosts: tuple[str, ...] = ()

    def host_of(self, index: int) -> str:
        return self.hosts[index] if self.hosts else LOCAL

    def for_worker(self, index: int) -> tuple[ComponentPlan, ...]:
        return tuple(c for c in self.components if c.worker == index)
