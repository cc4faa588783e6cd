"""Items of collected ports (``g.collect(port)``), streamed to the caller over the control channel.

Why the control channel and not a data socket bound by the caller: the coordinator only ever
connects out to workers and daemons (remote hosts cannot be asked to reach back into the
caller's network), and the control connection already exists, authenticated, to every worker
wherever it runs. Items go in batches (one message per COLLECT_BATCH items, or when the loop
idles), and the coordinator acknowledges each batch once it is appended to the caller's list:
a worker has at most COLLECT_WINDOW_ITEMS items or COLLECT_WINDOW_BYTES serialized bytes
unacknowledged, so memory stays bounded when the caller is slower than the components (the
sender then waits, as on a full port).

One collector per worker keeps one batch per port; each port's items keep their send order.
Plain values and small records travel packed (one pickle call per batch), as on data links;
anything else is serialized at send, so a sender changing the object afterwards changes nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import SerializationError
from ..transport import control
from ..transport.codec import (
    NOT_PACKABLE,
    dumps,
    dumps_packed,
    is_plain,
    loads,
    loads_packed,
    packable_copy,
)
from .inputs import RUN, WAIT_OUT, Activity
from .ports import SENT

# Items in one batch message to the coordinator: few messages for streams of small items.
COLLECT_BATCH = 4096
# Unacknowledged collected items and bytes per worker before senders wait for the caller.
COLLECT_WINDOW_ITEMS = 8 * COLLECT_BATCH
COLLECT_WINDOW_BYTES = 8 << 20
# Seconds a batch may wait for the loop to idle before it is sent anyway (as data links do).
COLLECT_MAX_DELAY = 0.005
# A serialized batch is sent at once when it holds this many bytes.
COLLECT_BATCH_BYTES = 1 << 20

_NUMBERS = frozenset({int, float})


class _Batch:
    """Pending items of one collected port: packed plain values, or serialized items."""

    __slots__ = ("packed", "items", "nbytes")

    def __init__(self, packed: bool) -> None:
        self.packed = packed
        self.items: list[Any] = []
        self.nbytes = 0


class Collector:
    """The worker's side of every collected port: batches, the flow-control window, flushes."""

    def __init__(self, send: Callable[[control.Record], None], max_item_bytes: int) -> None:
        self._send = send
        self._max_bytes = max_item_bytes
        self._open: dict[int, _Batch] = {}
        self._queued: list[control.Record] = []
        self.outstanding_items = 0
        self.outstanding_bytes = 0
        self._waiters: list[asyncio.Future[None]] = []
        self._scheduled = False
        self._since = 0.0
        self.full_name = "the caller (g.collect)"

    # -- flow control -----------------------------------------------------------------------------

    def room(self) -> int:
        """Items that may be collected now without waiting for the caller."""
        if self.outstanding_bytes >= COLLECT_WINDOW_BYTES:
            return 0
        return COLLECT_WINDOW_ITEMS - self.outstanding_items

    def acknowledge(self, items: int, nbytes: int) -> None:
        """The caller appended a batch: its room is free again."""
        self.outstanding_items -= items
        self.outstanding_bytes -= nbytes
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def pending(self) -> bool:
        """Items not yet sent (quiescence must not end the run while they wait)."""
        return bool(self._open)

    # -- sending ----------------------------------------------------------------------------------

    def add(self, sink: int, item: Any, where: tuple[str, str], activity: Activity) -> Awaitable[None]:
        if self.room() > 0:
            self._add(sink, item, where)
            return SENT
        return self._add_later(sink, item, where, activity)

    async def _add_later(
        self, sink: int, item: Any, where: tuple[str, str], activity: Activity
    ) -> None:
        while self.room() <= 0:
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            activity.set(WAIT_OUT, self)
            try:
                await fut
            finally:
                activity.set(RUN)
        self._add(sink, item, where)

    def _add(self, sink: int, item: Any, where: tuple[str, str]) -> None:
        packed = item if type(item) in _NUMBERS or is_plain(item) else packable_copy(item)
        batch = self._open.get(sink)
        if packed is not NOT_PACKABLE:
            # Packed values count in the byte window when their batch is serialized (_seal);
            # until then the item window bounds them (each is small).
            if batch is None or not batch.packed:
                batch = self._reopen(sink, True)
            batch.items.append(packed)
        else:
            body, buffers = dumps(item, self._max_bytes, *where)
            entry = (body, [bytes(b.raw()) for b in buffers]) if buffers else (body, [])
            if batch is None or batch.packed:
                batch = self._reopen(sink, False)
            batch.items.append(entry)
            size = len(body) + sum(len(b) for b in entry[1])
            batch.nbytes += size
            self.outstanding_bytes += size
        self.outstanding_items += 1
        if len(batch.items) >= COLLECT_BATCH or batch.nbytes >= COLLECT_BATCH_BYTES:
            self.flush()
        elif not self._scheduled:
            self._schedule()

    def _reopen(self, sink: int, packed: bool) -> _Batch:
        self._seal(sink)
        batch = self._open[sink] = _Batch(packed)
        return batch

    def _seal(self, sink: int) -> None:
        batch = self._open.pop(sink, None)
        if batch is None or not batch.items:
            return
        # Serialized items are (body, buffers) pairs of bytes: packed the same way.
        payload = dumps_packed(batch.items)
        if batch.packed:
            batch.nbytes = len(payload)
            self.outstanding_bytes += batch.nbytes
        self._queued.append(
            control.Collected(
                sink=sink, count=len(batch.items), packed=batch.packed, nbytes=batch.nbytes,
                payload=payload,
            )
        )

    def _schedule(self) -> None:
        self._scheduled = True
        self._since = time.monotonic()
        self._loop = asyncio.get_running_loop()
        self._loop.call_soon(self._flush_when_idle)

    def _flush_when_idle(self) -> None:
        ready = getattr(self._loop, "_ready", None)
        if ready and time.monotonic() - self._since < COLLECT_MAX_DELAY:
            self._loop.call_soon(self._flush_when_idle)
            return
        self.flush()

    def flush(self) -> None:
        """Send every pending batch now."""
        self._scheduled = False
        for sink in list(self._open):
            self._seal(sink)
        queued, self._queued = self._queued, []
        for record in queued:
            self._send(record)


class CollectEdge:
    """The writer behind a collected port: every item the port sends goes to the caller too."""

    __slots__ = ("sink", "collector", "where", "seq")

    def __init__(self, sink: int, collector: Collector, where: tuple[str, str]) -> None:
        self.sink = sink
        self.collector = collector
        self.where = where
        self.seq = 0  # items sent (what the port reports when this edge sends for it)

    @property
    def full_name(self) -> str:
        return self.collector.full_name

    def room(self) -> int:
        return self.collector.room()

    def add_room_listener(self, fut: asyncio.Future[None]) -> None:
        self.collector._waiters.append(fut)

    def send(self, item: Any, activity: Activity) -> Awaitable[None]:
        self.seq += 1
        collector = self.collector
        if type(item) in _NUMBERS and collector.outstanding_items < COLLECT_WINDOW_ITEMS:
            batch = collector._open.get(self.sink)
            if batch is not None and batch.packed:  # a stream of numbers: join the open batch
                items = batch.items
                items.append(item)
                collector.outstanding_items += 1
                if len(items) >= COLLECT_BATCH:
                    collector.flush()
                return SENT
        return collector.add(self.sink, item, self.where, activity)

    def close(self) -> None:
        """Nothing to tell: the caller's list is complete when the worker reports DONE."""


def unpack(batch: control.Collected) -> list[Any]:
    """The items of a Collected batch, in the caller's process."""
    try:
        entries = loads_packed(batch.payload, batch.count)
        if batch.packed:
            return entries
        return [loads(body, [memoryview(b) for b in buffers]) for body, buffers in entries]
    except Exception as exc:
        raise SerializationError(
            "g.collect", "", "?", str(exc),
            message=f"a collected item could not be deserialized in the caller: "
            f"{type(exc).__name__}: {exc}. Is the module that defines it importable here?",
        ) from exc
