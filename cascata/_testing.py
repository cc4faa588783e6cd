"""``Component.test``: run a component's runner once, in this process, collecting its output.

No graph, no worker process, no serialization: the runner gets the given inport values (or the
declared defaults), a collecting stand-in for every outport, and a fresh persistent value for
every persist (made by its factory, or the value passed under the persist's name).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .port import factory_arguments_error


class _Collector:
    """Stands in for an OutputPort: remembers every item sent."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.items: list[Any] = []

    def __repr__(self) -> str:
        return f"<test outport {self.name}: {len(self.items)} sent>"

    async def send(self, item: Any) -> None:
        self.items.append(item)


def run_once(cls: Any, values: dict[str, Any]) -> dict[str, list[Any]]:
    """Run ``cls``'s runner once with ``values``; return ``{outport: [items sent]}``."""
    from .component import run_runner_sync
    from .log import current_component

    kwargs = _inport_values(cls, values)
    outputs = {name: _Collector(name) for name in cls._decl.outports}
    kwargs.update(outputs)
    kwargs.update(_persist_values(cls, values))
    token = current_component.set(("test", cls.__name__))
    try:
        run_runner_sync(cls._runner(**kwargs))
    finally:
        current_component.reset(token)
    return {name: c.items for name, c in outputs.items()}


def _inport_values(cls: Any, values: dict[str, Any]) -> dict[str, Any]:
    decl = cls._decl
    inports = [name for name, *_ in decl.inports]
    persists = [name for name, _ in decl.persists]
    unknown = sorted(set(values) - set(inports) - set(persists))
    if unknown:
        raise TypeError(
            f"{cls.__name__}.test() got {unknown}, which are not inports or persists of "
            f"{cls.__name__} (inports: {inports}, persists: {persists})"
        )
    kwargs: dict[str, Any] = {}
    missing = []
    for name, _capacity, default in decl.inports:
        if name in values:
            kwargs[name] = values[name]
        elif default is not None:
            kwargs[name] = default
        else:
            missing.append(name)
    if missing:
        names = ", ".join(f"'{n}'" for n in missing)
        raise TypeError(
            f"{cls.__name__}.test() is missing a value for inport {names}: it has no default; "
            f"pass it as {cls.__name__}.test({missing[0]}=...)"
        )
    return kwargs


def _persist_values(cls: Any, values: dict[str, Any]) -> dict[str, Any]:
    from .worker.ports import PersistentValue

    made = {}
    for name, factory in cls._decl.persists:
        persist = PersistentValue(_checked_factory(cls, name, factory), (), {})
        if name in values:
            persist.set(values[name])
        made[name] = persist
    return made


def _checked_factory(cls: Any, name: str, factory: Callable[..., Any]) -> Callable[[], Any]:
    """The factory, called without arguments; a clear error if it needs some."""

    def make() -> Any:
        if factory_arguments_error(factory, (), {}) is not None:
            raise TypeError(
                f"{cls.__name__}.test(): persist '{name}' has a factory that needs arguments; "
                f"pass its value as {cls.__name__}.test({name}=...)"
            )
        return factory()

    return make
