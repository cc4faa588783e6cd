"""Firing rules as pure decisions: which ports fire the runner, zipping, batching.

No sockets and no asyncio here: the runner feeds events in and acts on what comes out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .._plan import FiringGroup


def resolve_groups(
    inports: Sequence[tuple[str, bool]], declared: Iterable[tuple[tuple[str, ...], bool]]
) -> tuple[FiringGroup, ...]:
    """The firing groups of a component.

    ``inports`` is ``(name, is_constant)`` in declaration order; ``declared`` the ``clk``/``sync``
    groups. No streaming port: no group (a source, runs once). No declared group: all streaming
    ports form one synchronized group. Otherwise the declared groups fire and every other streaming
    port is a listener that only updates the value passed to the next firing.
    """
    streaming = [name for name, constant in inports if not constant]
    if not streaming:
        return ()
    groups: list[FiringGroup] = []
    grouped: set[str] = set()
    for ports, fires in declared:
        live = tuple(p for p in ports if p in streaming)
        if live:
            groups.append(FiringGroup(live, fires))
            grouped.update(live)
    if not groups:
        return (FiringGroup(tuple(streaming), True),)
    listeners = [FiringGroup((p,), False) for p in streaming if p not in grouped]
    return tuple(groups + listeners)


def is_source(groups: Sequence[FiringGroup]) -> bool:
    """A component with no streaming port runs its runner exactly once."""
    return not groups


class Zip:
    """One synchronized group: collects one item per port, releases the tuple when complete.

    ``offer`` returns the values (port order) once every port has one, else ``None``. ``end``
    marks a port exhausted; a zip with an exhausted port never fires again, and an incomplete
    tuple is dropped (zip semantics: the group ends when any port ends).
    """

    def __init__(self, ports: Sequence[str]) -> None:
        self.ports = tuple(ports)
        self._values: dict[str, Any] = {}
        self.exhausted = False

    def missing(self) -> list[str]:
        """Ports that still owe an item for the current tuple, in port order."""
        return [p for p in self.ports if p not in self._values]

    def offer(self, port: str, value: Any) -> tuple[Any, ...] | None:
        if self.exhausted:
            return None
        if port in self._values:
            raise ValueError(f"port {port!r} offered twice for one tuple")
        self._values[port] = value
        if len(self._values) < len(self.ports):
            return None
        values = tuple(self._values[p] for p in self.ports)
        self._values.clear()
        return values

    def end(self, port: str) -> None:
        self.exhausted = True
        self._values.clear()


class Batcher:
    """Groups a port's items into lists: ``size`` n gives lists of n, ``0`` one list of all.

    ``add`` returns a full batch or ``None``; ``end`` returns the last, shorter batch (or ``None``
    when nothing is left over).
    """

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError("batch size must be >= 0")
        self.size = size
        self._items: list[Any] = []

    def add(self, item: Any) -> list[Any] | None:
        self._items.append(item)
        if self.size and len(self._items) >= self.size:
            batch, self._items = self._items, []
            return batch
        return None

    def end(self) -> list[Any] | None:
        if not self._items:
            return None
        batch, self._items = self._items, []
        return batch
