"""``Component.test``: run a component's runner once, in this process, collecting its output."""

from __future__ import annotations

from typing import Any


class _Collector:
    """Stands in for an OutputPort: remembers every item sent."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.items: list[Any] = []

    async def send(self, item: Any) -> None:
        self.items.append(item)


def run_once(cls: Any, inports: dict[str, Any]) -> dict[str, list[Any]]:
    from .component import run_runner_sync
    from .worker.ports import PersistentValue

    decl = cls._decl
    names = [n for n, *_ in decl.inports]
    unknown = sorted(set(inports) - set(names))
    if unknown:
        raise TypeError(f"{cls.__name__}.test() got values for unknown inport(s) {unknown}")
    kwargs: dict[str, Any] = {}
    for name, _capacity, default in decl.inports:
        if name in inports:
            kwargs[name] = inports[name]
        elif default is not None:
            kwargs[name] = default
        else:
            raise TypeError(f"{cls.__name__}.test() is missing a value for inport '{name}'")
    outputs = {name: _Collector(name) for name in decl.outports}
    kwargs.update(outputs)
    for name, factory in decl.persists:
        kwargs[name] = PersistentValue(factory, (), {})
    run_runner_sync(cls._runner(**kwargs))
    return {name: c.items for name, c in outputs.items()}
