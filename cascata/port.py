"""Graph-time ports: what ``a.out >> b.inp``, ``b.k < 5`` and batching build.

These objects only record wiring; nothing here moves data. The runtime counterparts live in
``cascata.worker.inputs`` and ``cascata.worker.ports``.
"""

from __future__ import annotations

import inspect
import numbers
from typing import TYPE_CHECKING, Any

from .errors import GraphError

if TYPE_CHECKING:
    from .component import Component


class _NotSet:
    """Marker for 'no initial value'; ``None`` also means that, as in cascata 0.1."""

    _instance: _NotSet | None = None

    def __new__(cls) -> _NotSet:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_SET"

    def __reduce__(self) -> str:
        return "NOT_SET"


NOT_SET = _NotSet()

# Items an inport holds when its declaration gives no capacity. Such a port's bound is the
# runtime's choice: small items may exceed it within a byte budget (worker.ports.SLACK_BYTES).
DEFAULT_CAPACITY = 10


class InPort:
    """An input port of one component instance.

    ``initial`` is a constant while the port has no connection, or a *seed* delivered before the
    connection's items when set (with ``<``) after connecting. ``batch_size`` is ``None`` for item
    by item, ``0`` for all items in one list, ``n`` for lists of ``n``.

    ``given_capacity`` is the capacity the user declared (``@inport('x', capacity=10)`` or
    ``port.capacity = 10``), exact at run time; ``None`` lets the runtime choose (``capacity``
    then reads DEFAULT_CAPACITY).
    """

    def __init__(
        self, component: Component, name: str, capacity: int | None, default: Any, type_: Any
    ) -> None:
        self.component = component
        self.name = name
        self.given_capacity = capacity
        self.type = type_
        self.initial: Any = NOT_SET if default is None else default
        self.batch_size: int | None = None
        self.connected = False

    @property
    def capacity(self) -> int:
        """Items this port holds: the given capacity, else DEFAULT_CAPACITY."""
        given = self.given_capacity
        return DEFAULT_CAPACITY if given is None else given

    @capacity.setter
    def capacity(self, value: int) -> None:
        self.given_capacity = check_capacity(value, self.full_name)

    @property
    def full_name(self) -> str:
        return f"{self.component.name}.{self.name}"

    def __repr__(self) -> str:
        return f"<inport {self.full_name}>"

    def initialize(self, value: Any) -> None:
        """Set the initial value: a constant if unconnected, else a seed delivered first."""
        self.initial = NOT_SET if value is None else value

    def __lt__(self, value: Any) -> bool:
        self.initialize(value)
        return True

    def __rshift__(self, other: Any) -> Any:
        raise wrong_side(self, other)

    __irshift__ = __rshift__

    def __rrshift__(self, other: Any) -> Any:
        raise GraphError(
            f"cannot wire {describe(other)} >> {self.full_name}: the left of '>>' must be an "
            f"output port, got {describe(other)}"
        )

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other


def check_capacity(value: Any, where: str) -> int:
    """``value`` if it is a valid capacity (a positive int), else a ValueError naming ``where``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"inport '{where}': capacity must be a positive integer, got {value!r}")
    return value


class OutPort:
    """An output port of one component instance; ``>>`` wires it to input ports."""

    def __init__(self, component: Component, name: str, type_: Any) -> None:
        self.component = component
        self.name = name
        self.type = type_

    @property
    def full_name(self) -> str:
        return f"{self.component.name}.{self.name}"

    def __repr__(self) -> str:
        return f"<outport {self.full_name}>"

    def __rshift__(self, other: Any) -> Any:
        return wire_or_batch(self, other)

    def __irshift__(self, other: Any) -> OutPort:
        connect(self, other, batch_size=0)
        return self

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other


class BatchBuilder:
    """The middle of ``out >> n >= inp``: deliver lists of ``n`` items."""

    def __init__(self, source: Any, size: int) -> None:
        if size < 1:
            raise ValueError(f"batch size must be at least 1, got {size}; use '>>=' for one list")
        self.source = source
        self.size = size

    def __ge__(self, target: Any) -> Any:
        connect(self.source, target, batch_size=self.size)
        return self.source


def wire_or_batch(source: Any, other: Any) -> Any:
    """``source >> other``: an edge to ``other``, or with a number the middle of ``>> n >=``."""
    if isinstance(other, numbers.Number):
        if isinstance(other, bool) or not isinstance(other, numbers.Integral):
            raise TypeError(
                f"{describe(source)} >> {other!r} >= ...: the batch size must be a whole number, "
                f"got {other!r}"
            )
        return BatchBuilder(source, int(other))
    connect(source, other, batch_size=None)
    return source


def describe(handle: Any) -> str:
    """How wiring errors name a port, group port or anything else found in a '>>'."""
    name = getattr(handle, "full_name", None)
    return name if isinstance(name, str) else repr(handle)


def port_kind(handle: Any) -> type | None:
    """InPort or OutPort for a port or a handle of ports of one kind (a group port), else None."""
    if isinstance(handle, InPort | OutPort):
        return type(handle)
    resolve = getattr(handle, "_resolve_ports", None)
    if resolve is None:
        return None
    kinds = {type(p) for p in resolve()}
    return kinds.pop() if len(kinds) == 1 else None


def wrong_side(left: Any, right: Any) -> GraphError:
    """The error for ``left >> right`` when ``left`` is an input port (or a group of them)."""
    hint = f"write an output port >> {describe(left)}"
    if port_kind(right) is OutPort:
        hint = f"did you mean {describe(right)} >> {describe(left)}?"
    return GraphError(
        f"cannot wire {describe(left)} >> {describe(right)}: {describe(left)} is an input port, "
        f"so it goes on the right of '>>' ({hint})"
    )


def check_direction(source: Any, target: Any) -> None:
    """Raise a GraphError naming the side of ``source >> target`` that has the wrong kind."""
    if port_kind(source) is InPort:
        raise wrong_side(source, target)
    if port_kind(target) is OutPort:
        raise GraphError(
            f"cannot wire {describe(source)} >> {describe(target)}: {describe(target)} is an "
            "output port, so it goes on the left of '>>' (the right side takes input ports)"
        )


def connect(source: Any, target: Any, batch_size: int | None) -> None:
    """Wire ``source`` (an outport, or a group/export handle) to ``target``, recording the edge."""
    graph = _graph_of(source)
    graph._connect(source, target, batch_size)


def _graph_of(source: Any) -> Any:
    graph = getattr(getattr(source, "component", None), "graph", None)
    if graph is None:
        graph = getattr(source, "graph", None)
    if graph is None:
        raise GraphError(
            f"{source!r} belongs to no graph; add its component to a Graph "
            "(g.name = Component) before wiring it"
        )
    return graph


class Persist:
    """Graph-time declaration of per-instance state; ``<`` sets the factory's arguments.

    ``p < x`` calls ``factory(x)``; ``p < (a, b)`` calls ``factory(a, b)``; ``p < {'k': v}`` calls
    ``factory(k=v)``; ``p < ((a,), {'k': v})`` both.
    """

    def __init__(self, component: Component, name: str, factory: Any) -> None:
        self.component = component
        self.name = name
        self.factory = factory
        self.args: tuple[Any, ...] = ()
        self.kwargs: dict[str, Any] = {}

    def set_args(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs

    def __lt__(self, value: Any) -> bool:
        if isinstance(value, tuple):
            if len(value) == 2 and isinstance(value[0], tuple) and isinstance(value[1], dict):
                self.set_args(*value[0], **value[1])
            else:
                self.set_args(*value)
        elif isinstance(value, dict):
            self.set_args(**value)
        else:
            self.set_args(value)
        return True

    def __rshift__(self, other: Any) -> Any:
        raise GraphError(
            f"cannot wire {self.component.name}.{self.name} >> {describe(other)}: "
            f"{self.component.name}.{self.name} is a persist (per-instance state), not a port"
        )

    __irshift__ = __rshift__

    def arguments_error(self) -> str | None:
        """Why the factory cannot be called with the arguments set (None when it can); checked
        before a run starts, so that no worker fails on it."""
        return factory_arguments_error(self.factory, self.args, self.kwargs)

    def __repr__(self) -> str:
        return f"<persist {self.component.name}.{self.name}>"


def factory_arguments_error(factory: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """Why ``factory(*args, **kwargs)`` would fail to bind its parameters, or None."""
    try:
        inspect.signature(factory).bind(*args, **kwargs)
    except TypeError as exc:
        return str(exc)
    except ValueError:  # no signature (some builtins): trust it
        return None
    return None
