"""Component groups (``Worker * 4``): data parallelism by replicating one component.

A group attached to a graph as ``g.ws`` adds members ``ws_0 … ws_{n-1}``; ``g.ws.port`` is a
handle that wires or initialises the same port of every member.

How items flow (``Graph._connect`` records it, the runtime applies it):

- single → group: each item goes to exactly one member: the next one in turn that has free room
  (round robin that skips full members; when all are full, the next in turn, and the send waits),
  so members that work faster, freeing room sooner, receive more items;
- group → single: the members' items merge (order kept per member);
- group → group of the same size: member i feeds member i;
- group(M) → group(N), M ≠ N: every source member distributes its items among the N targets,
  which is a merge followed by a distribution.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from typing import Any

from .errors import GraphError
from .port import InPort, OutPort, Persist, connect, wire_or_batch


class ComponentGroup:
    """``count`` instances of one component class, wired as one."""

    def __init__(self, comp_cls: type, count: int) -> None:
        self.comp_cls = comp_cls
        self.count = count
        self.name: str | None = None
        self.graph: Any = None
        self.members: list[Any] = []

    def _attach(self, graph: Any, alias: str) -> ComponentGroup:
        if self.graph is not None:
            raise GraphError(
                f"group '{self.name}' already belongs to a graph; make a new one with "
                f"{self.comp_cls.__name__} * {self.count}"
            )
        self.name = alias
        self.graph = graph
        for i in range(self.count):
            member = graph._add_node(f"{alias}_{i}", self.comp_cls(f"{alias}_{i}"))
            member.group_name = alias
            self.members.append(member)
        graph._group_handles[alias] = self
        return self

    def __getattr__(self, name: str) -> GroupPort:
        if name.startswith("_") or not self.__dict__.get("members"):
            raise AttributeError(name)
        if name not in self.members[0]._ports:
            raise AttributeError(f"group '{self.name}' has no port '{name}'")
        return GroupPort(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, GroupPort) and value.group is self:
            return  # ``g.ws.out >>= x`` assigns the handle back
        object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Any]:
        return iter(self.members)

    def __getitem__(self, index: int) -> Any:
        return self.members[index]

    def initialize(self, port: str, value: Any) -> None:
        """Set the initial value of inport (or persist arguments of) ``port`` on every member."""
        if not self.members:
            raise GraphError(f"{self!r} has no members yet; add it to a graph (g.name = group)")
        target = self.members[0]._ports.get(port)
        if not isinstance(target, InPort | Persist):
            raise GraphError(
                f"group '{self.name}' has no inport or persist named {port!r} "
                f"(ports: {', '.join(self.members[0]._ports)}); '<' sets inports and persists"
            )
        for member in self.members:
            operator.lt(member._ports[port], value)  # the same '<' a single component gets

    def clk(self, *ports: GroupPort) -> None:
        """``clk`` on every member."""
        for member in self.members:
            member.clk(*(getattr(member, p.name) for p in ports))

    def sync(self, *ports: GroupPort) -> None:
        """``sync`` on every member."""
        for member in self.members:
            member.sync(*(getattr(member, p.name) for p in ports))

    def __repr__(self) -> str:
        return f"<ComponentGroup {self.name} {self.comp_cls.__name__} x{self.count}>"


class GroupPort:
    """The same port on every member of a group.

    Setting ``capacity`` sets it on every member's port; any other attribute is refused (a
    handle that silently kept what was set on it hid a capacity that never applied)."""

    __slots__ = ("group", "name")

    def __init__(self, group: ComponentGroup, name: str) -> None:
        self.group = group
        self.name = name

    @property
    def capacity(self) -> int:
        """The members' capacity (they share it unless set one by one: then the largest)."""
        return max(p.capacity for p in self._resolve_ports())

    @capacity.setter
    def capacity(self, value: int) -> None:
        for port in self._resolve_ports():
            if not isinstance(port, InPort):
                raise GraphError(f"'{self.full_name}' is an outport: only inports have a capacity")
            port.capacity = value

    @property
    def graph(self) -> Any:
        return self.group.graph

    @property
    def full_name(self) -> str:
        return f"{self.group.name}.{self.name}"

    def _resolve_ports(self) -> list[Any]:
        return [getattr(m, self.name) for m in self.group.members]

    def __lt__(self, value: Any) -> bool:
        self.group.initialize(self.name, value)
        return True

    def __rshift__(self, other: Any) -> Any:
        return wire_or_batch(self, other)

    def __irshift__(self, other: Any) -> GroupPort:
        connect(self, other, batch_size=0)
        return self

    def __repr__(self) -> str:
        return f"<group port {self.group.name}.{self.name}>"


def resolve_ports(handle: Any, kind: type, role: str) -> list[Any]:
    """The concrete ports behind a port, group port or export handle, checked to be ``kind``."""
    if isinstance(handle, InPort | OutPort):
        ports = [handle]
    elif hasattr(handle, "_resolve_ports"):
        ports = handle._resolve_ports()
    else:
        raise GraphError(f"cannot wire {handle!r}: the {role} must be a port")
    want = "an output port" if kind is OutPort else "an input port"
    for p in ports:
        if not isinstance(p, kind):
            raise GraphError(f"the {role} must be {want}, got {p!r}")
    return ports
