"""Components: ``@component`` turns an ``async def`` into a Component class.

The decorators only record declarations on the function; ``@component`` (outermost) reads them and
builds a class. Each instance owns its ports; the runner is called with arguments bound by name.
"""

from __future__ import annotations

import asyncio
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import GraphError
from .port import InPort, OutPort, Persist, check_capacity


@dataclass
class _Declarations:
    """What the decorators recorded, in source order (top to bottom)."""

    inports: list[tuple[str, int | None, Any]] = field(default_factory=list)
    outports: list[str] = field(default_factory=list)
    persists: list[tuple[str, Callable[..., Any]]] = field(default_factory=list)


def _declarations(func: Any) -> _Declarations:
    decl = getattr(func, "_cascata_decl", None)
    if decl is None:
        decl = _Declarations()
        func._cascata_decl = decl
    return decl


def _check_name(func: Any, name: str) -> None:
    if not isinstance(name, str) or not name.isidentifier():
        raise GraphError(f"port name {name!r} must be a Python identifier")
    decl = _declarations(func)
    taken = {n for n, *_ in decl.inports} | set(decl.outports) | {n for n, _ in decl.persists}
    if name in taken:
        raise GraphError(f"'{name}' is declared twice on {getattr(func, '__name__', func)}")


def inport(name: str, capacity: int | None = None, default: Any = None) -> Callable[[Any], Any]:
    """Declare an input port; ``default`` is a constant.

    A given ``capacity`` bounds exactly how many items a publisher may have sent and this
    port's runner not yet taken (pace, not only memory); without one the runtime chooses
    (DEFAULT_CAPACITY items, more for small items within a byte budget)."""
    if capacity is not None:
        check_capacity(capacity, name)

    def decorate(func: Any) -> Any:
        _check_name(func, name)
        _declarations(func).inports.insert(0, (name, capacity, default))
        return func

    return decorate


def outport(name: str) -> Callable[[Any], Any]:
    """Declare an output port; the runner receives it and calls ``await port.send(item)``."""

    def decorate(func: Any) -> Any:
        _check_name(func, name)
        _declarations(func).outports.insert(0, name)
        return func

    return decorate


def persist(name: str, factory: Callable[..., Any]) -> Callable[[Any], Any]:
    """Declare per-instance state, made by ``factory`` lazily in the worker that runs it."""
    if not callable(factory):
        raise TypeError(f"persist '{name}': factory must be callable, got {factory!r}")

    def decorate(func: Any) -> Any:
        _check_name(func, name)
        _declarations(func).persists.insert(0, (name, factory))
        return func

    return decorate


class ComponentMeta(type):
    """Metaclass so that ``Worker * 4`` makes a group of four instances."""

    def __mul__(cls, count: Any) -> Any:
        from ._groups import ComponentGroup

        if not isinstance(count, int) or isinstance(count, bool):
            raise TypeError(
                f"{cls.__name__} * {count!r}: a component group needs a whole number of "
                f"members, got {type(count).__name__}"
            )
        if count < 1:
            raise ValueError(f"{cls.__name__} * {count}: a group needs at least one member")
        return ComponentGroup(cls, count)

    __rmul__ = __mul__


class Component(metaclass=ComponentMeta):
    """One instance of a component in a graph. Subclasses are made by ``@component``."""

    _runner: Callable[..., Any]
    _decl: _Declarations
    _hints: dict[str, Any]

    def __init__(self, name: str | None = None) -> None:
        object.__setattr__(self, "_ports", {})
        self.name = name or type(self).__name__
        self.graph: Any = None
        self.group_name: str | None = None
        self._firing: list[tuple[tuple[str, ...], bool]] = []
        for pname, capacity, default in self._decl.inports:
            self._ports[pname] = InPort(self, pname, capacity, default, self._hints.get(pname))
        for pname in self._decl.outports:
            self._ports[pname] = OutPort(self, pname, self._hints.get(pname))
        for pname, factory in self._decl.persists:
            self._ports[pname] = Persist(self, pname, factory)

    def __getattr__(self, name: str) -> Any:
        ports = self.__dict__.get("_ports")
        if ports is not None and name in ports:
            return ports[name]
        known = ", ".join(ports) if ports else "none"
        raise AttributeError(
            f"component {self.__dict__.get('name', '?')}@{type(self).__name__} has no port "
            f"'{name}' (ports: {known})"
        )

    def __setattr__(self, name: str, value: Any) -> None:
        ports = self.__dict__.get("_ports", {})
        if name in ports:
            # ``a.out >>= b.inp`` assigns the result back to ``a.out``: that is the port itself.
            if value is ports[name]:
                return
            raise GraphError(
                f"cannot assign to port '{self.name}.{name}'; use '<' to set an initial value"
            )
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    @property
    def inports(self) -> list[InPort]:
        return [p for p in self._ports.values() if isinstance(p, InPort)]

    @property
    def outports(self) -> list[OutPort]:
        return [p for p in self._ports.values() if isinstance(p, OutPort)]

    @property
    def persists(self) -> list[Persist]:
        return [p for p in self._ports.values() if isinstance(p, Persist)]

    def _own_inport(self, port: Any, how: str) -> str:
        if not isinstance(port, InPort) or port.component is not self:
            raise GraphError(f"{self.name}.{how}() takes input ports of {self.name}, got {port!r}")
        return port.name

    def clk(self, *ports: InPort) -> None:
        """Fire the runner on every item of each given port (one firing group per port)."""
        for port in ports:
            self._firing.append(((self._own_inport(port, "clk"),), True))

    def sync(self, *ports: InPort) -> None:
        """Fire the runner once per zipped tuple of items from the given ports."""
        names = tuple(self._own_inport(p, "sync") for p in ports)
        if names:
            self._firing.append((names, True))

    @classmethod
    def test(cls, **inports: Any) -> dict[str, list[Any]]:
        """Run the runner once in this process with the given inport values.

        Returns every outport's sent items: ``{'out': [items]}``. Persist values start from their
        factories (called without arguments).
        """
        from ._testing import run_once

        return run_once(cls, inports)


def component(func: Callable[..., Any]) -> type[Component]:
    """Make a Component class from an ``async def`` decorated with inport/outport/persist."""
    if not inspect.iscoroutinefunction(func):
        raise TypeError(
            f"@component needs an 'async def' function, got {getattr(func, '__name__', func)!r}; "
            "write 'async def' and await port.send(...)"
        )
    decl = _declarations(func)
    _check_signature(func, decl)
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # unresolvable forward references: fall back to the raw annotations
        hints = dict(getattr(func, "__annotations__", {}))
    namespace = {
        "_runner": staticmethod(func),
        "_decl": decl,
        "_hints": hints,
        "__module__": func.__module__,
        "__qualname__": func.__qualname__,
        "__doc__": func.__doc__,
    }
    return ComponentMeta(func.__name__, (Component,), namespace)


def _check_signature(func: Any, decl: _Declarations) -> None:
    params = inspect.signature(func).parameters
    has_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    declared = [n for n, *_ in decl.inports] + decl.outports + [n for n, _ in decl.persists]
    missing = [n for n in declared if n not in params and not has_var_kw]
    if missing:
        raise TypeError(
            f"{func.__name__} declares {missing} but has no parameter of that name; "
            "every port and persist is passed by name"
        )


def run_runner_sync(coro: Any) -> Any:
    """Run a coroutine to completion whether or not an event loop is already running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
