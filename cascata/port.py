"""Graph-time ports: what ``a.out >> b.inp``, ``b.k < 5`` and batching build.

These objects only record wiring; nothing here moves data. The runtime counterparts live in
``cascata.worker.inputs`` and ``cascata.worker.ports``.
"""

from __future__ import annotations

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
        if isinstance(other, int) and not isinstance(other, bool):
            return BatchBuilder(self, other)
        connect(self, other, batch_size=None)
        return self

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

    def __repr__(self) -> str:
        return f"<persist {self.component.name}.{self.name}>"
