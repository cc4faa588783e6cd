"""Data links between worker processes over ZeroMQ PUSH/PULL.

Each worker binds one PULL socket; to each peer it sends over its own PUSH socket connected to
that peer alone (so every edge's end of stream reaches exactly its consumer). A :class:`Link`
batches consecutive small items of one edge into one message, flushing when the batch is full
or when the event loop next gets control, so light traffic stays low-latency. The
:class:`Dispatcher` validates what arrives and checks per-edge sequence numbers: a gap or a
short end-of-stream count is reported as lost items, never ignored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import zmq

from ..errors import ProtocolError, SerializationError
from . import frames as wire
from .codec import dumps_packed, loads, loads_packed

# Seconds a flush may wait for the loop to become idle before it sends anyway: long enough to
# gather a burst (every message wakes threads in both processes, which costs the sender and
# receiver far more than the bytes), short enough that a busy worker never starves its peers.
_MAX_DELAY = 0.002


class _Batch:
    """Items of one edge waiting to be sent: plain values packed together, or serialized items."""

    __slots__ = ("seq0", "plain", "bodies", "buffers", "nbytes", "big", "limit")

    def __init__(self, seq0: int, limit: int) -> None:
        self.seq0 = seq0
        self.limit = limit  # items: sent when it holds this many
        self.plain: list[Any] = []
        self.bodies: list[bytes] = []
        self.buffers: list[list[Any]] = []
        self.nbytes = 0
        self.big = False

    def encode(self, edge: int) -> list[Any]:
        if self.plain:
            body = dumps_packed(self.plain)
            return wire.encode_packed(edge, self.seq0, len(self.plain), body)
        msg = wire.encode_data(edge, self.seq0, self.bodies, self.buffers)
        if self.big:
            msg.insert(0, True)  # marker: send without copying the large buffers
        return msg


class Link:
    """Outgoing messages to one peer worker; items are batched per edge until the next flush."""

    def __init__(
        self, sock: zmq.Socket, tracker: Any, batch_items: int, batch_bytes: int
    ) -> None:
        self._sock = sock
        self._tracker = tracker
        self._batch_items = batch_items
        self._batch_bytes = batch_bytes
        self._queue: list[list[Any]] = []
        self._open: dict[int, _Batch] = {}
        self._credits: dict[int, int] = {}
        self._limits: dict[int, int] = {}
        self._scheduled = False
        self._since = 0.0
        # The pending _flush_when_idle call: cancelled by a flush, so that no stale one runs
        # beside a newer one (two would each see the other ready and spin until _MAX_DELAY).
        self._handle: asyncio.Handle | None = None

    def set_batch_limit(self, edge: int, items: int) -> None:
        """Send ``edge``'s batches once they hold ``items`` (fewer than batch_items): a
        publisher bounded by a small credit window then overlaps with its consumer, which
        starts on the first half of a window while the second is being produced."""
        self._limits[edge] = max(1, min(items, self._batch_items))

    def pending(self) -> bool:
        return bool(self._open or self._queue or self._credits)

    def add_plain(self, edge: int, seq: int, item: Any) -> None:
        """Queue a plain value (see codec.is_plain); an edge's plain values travel packed."""
        batch = self._open.get(edge)
        if batch is None or batch.bodies:
            if batch is not None:
                self._seal(edge)
            batch = self._open[edge] = _Batch(seq, self._limits.get(edge, self._batch_items))
        batch.plain.append(item)
        if len(batch.plain) >= batch.limit:
            self.flush()
        elif not self._scheduled:
            self._schedule()

    def add_item(self, edge: int, seq: int, body: bytes, buffers: list[Any]) -> None:
        """Queue an item serialized on its own (body and out-of-band buffers)."""
        batch = self._open.get(edge)
        if batch is None or batch.plain:
            if batch is not None:
                self._seal(edge)
            batch = self._open[edge] = _Batch(seq, self._limits.get(edge, self._batch_items))
        batch.bodies.append(body)
        batch.buffers.append(buffers)
        batch.nbytes += len(body)
        if buffers:
            batch.big = True
            batch.nbytes += sum(b.raw().nbytes for b in buffers)
        if len(batch.bodies) >= batch.limit or batch.nbytes >= self._batch_bytes:
            self.flush()
        else:
            self._schedule()

    def add_eos(self, edge: int, total: int) -> None:
        self._seal(edge)
        self._queue.append(wire.encode_eos(edge, total))
        self._schedule()

    def add_credit(self, edge: int, n: int) -> None:
        # Credit for one edge accumulates until the flush: one message however many returns.
        self._credits[edge] = self._credits.get(edge, 0) + n
        self._schedule()

    def send_credit(self, edge: int, n: int) -> None:
        """Send credit for ``edge`` now (with any accumulated for it): its publisher is held
        by a small window, and waiting for this loop to go idle would hold it longer."""
        n += self._credits.pop(edge, 0)
        self._sock.send_multipart(wire.encode_credit(edge, n))
        self._tracker.msgs_sent += 1

    def _seal(self, edge: int) -> None:
        batch = self._open.pop(edge, None)
        if batch is not None:
            self._queue.append(batch.encode(edge))

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self._since = time.monotonic()
            self._loop = asyncio.get_running_loop()
            self._handle = self._loop.call_soon(self._flush_when_idle)

    def _flush_when_idle(self) -> None:
        # Flush when this worker's loop has nothing else ready to run, i.e. just before it would
        # wait for I/O: items produced in one burst travel together, and a lone item still goes
        # out at once. (asyncio keeps ready callbacks in ``_ready``; other loops flush at once.)
        ready = getattr(self._loop, "_ready", None)
        if ready and time.monotonic() - self._since < _MAX_DELAY:
            self._handle = self._loop.call_soon(self._flush_when_idle)
            return
        self._handle = None
        self.flush()

    def flush(self) -> None:
        """Send everything queued now (never blocks: flow control is by credit, HWM is off)."""
        self._scheduled = False
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        for edge in list(self._open):
            self._seal(edge)
        if self._credits:
            for edge, n in self._credits.items():
                self._queue.append(wire.encode_credit(edge, n))
            self._credits = {}
        queue, self._queue = self._queue, []
        for msg in queue:
            if msg[0] is True:
                self._sock.send_multipart(msg[1:], copy=False)
            else:
                self._sock.send_multipart(msg)
            self._tracker.msgs_sent += 1


class Dispatcher:
    """Routes decoded messages from the PULL socket to channels and publishers of this worker.

    ``inbound`` maps an edge id to ``(channel, label)`` for edges this worker consumes;
    ``outbound`` maps an edge id to the publisher object that receives its credit.
    """

    def __init__(
        self,
        inbound: Mapping[int, tuple[Any, str]],
        outbound: Mapping[int, Any],
        tracker: Any,
        max_item_bytes: int | None = None,
    ) -> None:
        self._inbound = inbound
        self._outbound = outbound
        self._expected = dict.fromkeys(inbound, 0)
        # Edge -> the item count its end of stream announced (and the sequence check confirmed).
        self.ended: dict[int, int] = {}
        self._tracker = tracker
        self._max_item_bytes = max_item_bytes

    def handle(self, frames: list[Any]) -> None:
        msg = wire.decode(frames)
        self._tracker.msgs_received += 1
        self._tracker.events += 1
        if isinstance(msg, wire.CreditMsg):
            publisher = self._outbound.get(msg.edge)
            if publisher is None:
                raise ProtocolError(f"malformed frame: credit for unknown edge {msg.edge}")
            publisher.add_credit(msg.n)
            return
        if msg.edge not in self._inbound:
            raise ProtocolError(f"malformed frame: data for unknown edge {msg.edge}")
        channel, label = self._inbound[msg.edge]
        expected = self._expected[msg.edge]
        if msg.edge in self.ended:
            # A publisher ends once: anything after its end of stream is a stray or forged
            # message, and must not be taken for items of a stream that already ended.
            what = "a second end of stream" if isinstance(msg, wire.EosMsg) else "items"
            raise ProtocolError(
                f"malformed stream: {what} on connection {label} after its end of stream"
            )
        if isinstance(msg, wire.EosMsg):
            if msg.total != expected:
                raise ProtocolError(
                    f"items lost on connection {label}: the publisher sent {msg.total} items, "
                    f"{expected} arrived"
                )
            self.ended[msg.edge] = msg.total
            channel.publisher_done(msg.edge)
            return
        if msg.seq != expected:
            raise ProtocolError(
                f"items lost on connection {label}: expected item #{expected}, got #{msg.seq}"
            )
        self._check_sizes(msg, label)
        try:
            if msg.packed is not None:
                items = loads_packed(msg.packed, msg.count)
            else:
                items = [loads(b, bufs) for b, bufs in zip(msg.bodies, msg.buffers, strict=True)]
        except Exception as exc:
            raise SerializationError(
                label,
                "",
                "?",
                str(exc),
                message=f"an item on connection {label} could not be deserialized: "
                f"{type(exc).__name__}: {exc}. Is the module that defines it importable here?",
            ) from exc
        self._expected[msg.edge] = expected + len(items)
        channel.deliver(msg.edge, items)

    def sent(self) -> dict[int, int]:
        """Items this worker's publishers sent per outbound edge so far."""
        return {edge: publisher.seq for edge, publisher in self._outbound.items()}

    def _check_sizes(self, msg: wire.DataMsg, label: str) -> None:
        """Refuse, unread, an item over the size limit: a sender checks it before sending, so
        only a broken or hostile peer sends one, and unpickling it could exhaust memory."""
        limit = self._max_item_bytes
        if limit is None or msg.nbytes <= limit:
            return
        if msg.packed is not None:
            size, allowed = msg.packed.nbytes, limit * msg.count
        else:
            size, allowed = 0, limit
            for body, bufs in zip(msg.bodies, msg.buffers, strict=True):
                size = max(size, body.nbytes + sum(b.nbytes for b in bufs))
        if size > allowed:
            raise ProtocolError(
                f"malformed frame: an item of {size} bytes on connection {label} is over "
                f"max_item_bytes={limit}; refused unread. Run the same settings on every host."
            )
