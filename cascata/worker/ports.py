"""Run-time output side: the port a runner sends on, the edges behind it, persistent values.

An edge to a component in the same worker hands items over in memory (through its input
channel, or inline when that component fires on the port alone); an edge to another worker
serializes items onto a link, bounded by credit.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from .._plan import EdgePlan
from ..transport.codec import NOT_PACKABLE, NUMBER_BYTES, dumps, is_plain, packable_copy, packed_bytes
from .inputs import RUN, WAIT_OUT, Activity, InputChannel
from .pace import Pace

# Extra items a remote publisher may have in flight beyond the window of an inport with no given
# capacity while they are small (see RemoteEdge). It keeps links busy. Measured on W1 with 2
# workers: 1024 (with 256-item batches) gave 210-330k items/s, 4096 (with 1024-item batches)
# 340-430k: fewer, larger messages mean fewer wake-ups of both processes.
SMALL_ITEM_SLACK = 4096
# The byte budget of that slack: an item goes beyond the window only while the serialized bytes
# in flight on the edge (for packed items, codec.packed_bytes) stay within it.
SLACK_BYTES = 1 << 20
_NOT_WAITING = object()
_NUMBERS = frozenset({int, float})


def _completed() -> asyncio.Future[None]:
    """An already-finished awaitable: ``await`` on it returns at once, without a task switch."""
    loop = asyncio.new_event_loop()
    try:
        fut = loop.create_future()
        fut.set_result(None)
    finally:
        loop.close()
    return fut


# Returned by sends that needed no waiting, so the fast path creates no coroutine.
SENT = _completed()


class LocalEdge:
    """An edge to a channel in this worker: items are handed over in memory, not serialized."""

    __slots__ = ("edge_id", "target", "sent", "slack", "_limit", "pace")

    def __init__(self, edge_id: int, target: InputChannel, slack: int = 0) -> None:
        self.edge_id = edge_id
        self.target = target
        self.sent = 0
        # Plain values may fill the buffer beyond capacity by ``slack`` (as on remote edges):
        # fewer task switches between producer and consumer, little memory.
        self.slack = slack
        self._limit = target.capacity + slack
        self.pace: Pace | None = None  # set when the edge distributes over a group

    def room(self) -> int:
        return self._limit - len(self.target._buffer)

    def most(self) -> int:
        return self.target.capacity + self.slack

    def backlog(self) -> int:
        return len(self.target._buffer)

    def taken(self) -> int:
        return self.target.received - len(self.target._buffer)

    @property
    def full_name(self) -> str:
        return self.target.full_name

    def add_room_listener(self, fut: asyncio.Future[None]) -> None:
        self.target._room_waiters.append(fut)

    def send(self, item: Any, activity: Activity) -> Awaitable[None]:
        self.sent += 1
        target = self.target
        plain = type(item) in _NUMBERS or is_plain(item)
        self._limit = limit = target.capacity + self.slack if plain else target.capacity
        if len(target._buffer) < limit:
            target._append(self.edge_id, item)
            return SENT
        return target.put(self.edge_id, item, activity, limit)

    def close(self) -> None:
        self.target.publisher_done(self.edge_id)


class InlineAbort(BaseException):
    """Unwinds a publisher whose inline consumer failed; the failure is already reported.

    A BaseException so that user code catching Exception around ``send`` cannot swallow it."""


class InlineEdge:
    """An edge whose consumer runs inside the publisher's ``send`` (EdgePlan.inline)."""

    __slots__ = ("edge_id", "target", "port", "accept")

    def __init__(self, edge_id: int, port: str) -> None:
        self.edge_id = edge_id
        self.port = port
        self.target: Any = None  # the consumer's ComponentRuntime, set once all are built
        self.accept: Callable[[Any], Awaitable[None]] | None = None

    def connect(self, target: Any) -> None:
        self.target = target
        self.accept = target.acceptor(self.port)

    def room(self) -> int:
        return 1

    def send(self, item: Any, activity: Activity) -> Awaitable[None]:
        return self.accept(item)

    def close(self) -> None:
        self.target.finish()


class OutputPort:
    """What a runner's outport parameter is: ``await port.send(item)``.

    Every route receives every item (fan-out); a route of several edges (into a component group)
    gives each item to the member with the most free room.
    """

    def __init__(self, name: str, routes: list[list[Any]], activity: Activity) -> None:
        self.name = name
        self._routes = routes
        self._activity = activity
        self._turn = 0
        self._sent = 0
        self._only = routes[0][0] if len(routes) == 1 and len(routes[0]) == 1 else None
        self._spread = routes[0] if len(routes) == 1 and len(routes[0]) > 1 else None
        for route in routes:
            if len(route) > 1:
                for writer in route:
                    writer.pace = Pace(writer.most())
        # Fan-out to single edges (a connection and a g.collect, say): each edge gets the item
        # at once and the send waits only for those that must (see _fan_out).
        fan = len(routes) > 1 and all(len(r) == 1 for r in routes)
        self._fan = [r[0] for r in routes] if fan else None

    def bind_inline(self) -> None:
        """Call once inline edges are connected: a port with one edge, inline or remote, sends
        through that edge's own function (an instance attribute shadowing ``send``), one call
        less per item."""
        only = self._only
        if isinstance(only, InlineEdge):
            self.send = only.accept  # type: ignore[method-assign]
        elif hasattr(only, "sender"):  # a RemoteEdge, or a collected port's CollectEdge
            self.send = only.sender(self)  # type: ignore[method-assign]

    @property
    def sent(self) -> int:
        """Items sent on this port (counted by the edge when ``send`` is bound to it)."""
        only = self._only
        if isinstance(only, InlineEdge) and only.accept is not None:
            return self._sent + only.target.channels[only.port].received
        if hasattr(only, "sender"):  # an edge that sends for the port counts in ``seq``
            return only.seq
        return self._sent

    def __repr__(self) -> str:
        return f"<OutputPort {self._activity.label}.{self.name}>"

    def send(self, item: Any) -> Awaitable[None]:
        """Send ``item`` downstream; await the result (it waits while receivers are full)."""
        self._sent += 1
        only = self._only
        if only is not None:
            return only.send(item, self._activity)
        spread = self._spread
        if spread is not None:  # one route into a group: a member with room takes it at once
            writer = self._next_with_room(spread)
            if writer is not None:
                return writer.send(item, self._activity)
        fan = self._fan
        if fan is not None:
            return self._fan_out(fan, item)
        return self._send_routes(item)

    def _fan_out(self, fan: list[Any], item: Any) -> Awaitable[None]:
        """Hand ``item`` to every edge now; await only the sends that could not finish at once
        (a coroutine per item for every fan-out cost W1 with a collected port a third)."""
        activity = self._activity
        waits = None
        for writer in fan:
            done = writer.send(item, activity)
            if done is not SENT:
                if waits is None:
                    waits = [done]
                else:
                    waits.append(done)
        if waits is None:
            return SENT
        return waits[0] if len(waits) == 1 else _await_each(waits)

    async def _send_routes(self, item: Any) -> None:
        for route in self._routes:
            if len(route) == 1:
                await route[0].send(item, self._activity)
                continue
            writer = self._next_with_room(route)
            while writer is None:
                await self._wait_any_room(route)
                writer = self._next_with_room(route)
            await writer.send(item, self._activity)

    def _next_with_room(self, route: list[Any]) -> Any:
        """The next member in turn that has room, within its pace (see worker.pace), or
        None. Members that work faster free room sooner and so receive more items; a stalled
        member holds up nobody."""
        n = len(route)
        now = time.monotonic()
        for _ in range(n):
            self._turn = (self._turn + 1) % n
            writer = route[self._turn]
            if _paced_room(writer, now):
                return writer
        return None

    async def _wait_any_room(self, route: list[Any]) -> None:
        fut = asyncio.get_running_loop().create_future()
        for writer in route:
            writer.add_room_listener(fut)
        self._activity.set(WAIT_OUT, _AnyMember(route))
        try:
            await fut
        finally:
            self._activity.set(RUN)

    def close(self) -> None:
        """Tell every receiver this publisher is done (end of stream)."""
        for route in self._routes:
            for writer in route:
                writer.close()


def _paced_room(writer: Any, now: float) -> bool:
    return writer.room() > 0 and writer.pace.allows(writer.backlog(), writer.taken(), now)


async def _await_each(waits: list[Awaitable[None]]) -> None:
    try:
        for wait in waits:
            await wait
    finally:  # after a failure, the sends not awaited yet must not warn "never awaited"
        for wait in waits:
            close = getattr(wait, "close", None)
            if close is not None:
                close()


class _AnyMember:
    """What a sender into a full group waits on: room at any member, within its pace."""

    def __init__(self, route: list[Any]) -> None:
        self.route = route
        self.full_name = " or ".join(w.full_name for w in route)

    def room(self) -> int:
        now = time.monotonic()
        return int(any(_paced_room(w, now) for w in self.route))


class PersistentValue:
    """Per-instance state made lazily, by the factory, in the worker that runs the component."""

    def __init__(self, factory: Callable[..., Any], args: tuple[Any, ...], kwargs: dict) -> None:
        self._factory = factory
        self._args = args
        self._kwargs = kwargs
        self._made = False
        self.value: Any = None

    def get(self) -> Any:
        if not self._made:
            self.value = self._factory(*self._args, **self._kwargs)
            self._made = True
        return self.value

    def set(self, value: Any) -> None:
        self.value = value
        self._made = True

    def exit(self) -> None:
        """Exit the value if it is a context manager (an open file, a database connection),
        as a ``with`` block would when the component ends. A value the caller passed in as a
        factory argument is the caller's, and left alone."""
        value = self.value
        if not self._made or not hasattr(type(value), "__exit__"):
            return
        if any(value is arg for arg in (*self._args, *self._kwargs.values())):
            return
        self._made = False
        self.value = None
        type(value).__exit__(value, None, None, None)

    def __repr__(self) -> str:
        return f"<PersistentValue {self.value!r}>" if self._made else "<PersistentValue (unset)>"


class RemoteEdge:
    """An edge to a channel in another worker: items are serialized and batched on a link.

    The publisher may have at most ``window`` items sent and not yet taken by the consumer, plus
    up to ``slack`` (0 when the inport's capacity was given) more while the bytes in flight stay
    within SLACK_BYTES: serialized bytes for items pickled on their own, an upper bound
    (codec.packed_bytes) for plain values and small flat records, which travel packed. Streams
    of small items (numbers, short records) are then not throttled by credit round trips, while
    large items stay bounded by the window exactly.
    """

    __slots__ = (
        "edge_id", "link", "window", "slack", "outstanding", "seq", "full_name", "_waiter",
        "_listeners", "_where", "_max_bytes", "inflight_bytes", "_sizes", "_credited", "_waiting",
        "limit", "pace",
    )

    def __init__(self, edge: EdgePlan, link: Any, max_bytes: int, source: str = "") -> None:
        """``source``: the sending component as errors name it (``name@Class``)."""
        self.edge_id = edge.edge_id
        self.link = link
        self.window = edge.window
        self.slack = edge.slack
        self.outstanding = 0
        self.seq = 0
        self.full_name = f"{edge.dst_component}.{edge.dst_port}"
        self._waiter: asyncio.Future[None] | None = None
        self._listeners: list[asyncio.Future[None]] = []
        self._where = (source or edge.src_component, edge.src_port)
        self._max_bytes = max_bytes
        # Bytes of the items in flight other than numbers (which count NUMBER_BYTES each), and
        # (seq, size) of each, oldest first: credit for n items retires the oldest n, as the
        # consumer takes them in order.
        self.inflight_bytes = 0
        self._sizes: deque[tuple[int, int]] = deque()
        self._credited = 0
        # Size of the item a blocked send holds (None: a number), for room().
        self._waiting: int | None | object = _NOT_WAITING
        # Most items in flight while the next one is a number: the hot path's one comparison.
        self.limit = self.window
        self._set_limit()
        if not self.slack:  # exact: overlap with the consumer, half a window at a time
            link.set_batch_limit(self.edge_id, self.window // 2)
        self.pace: Pace | None = None  # set when the edge distributes over a group

    def most(self) -> int:
        return self.window + self.slack

    def backlog(self) -> int:
        return self.outstanding

    def taken(self) -> int:
        return self._credited

    def _set_limit(self) -> None:
        numbers_fit = (SLACK_BYTES - self.inflight_bytes) // NUMBER_BYTES + len(self._sizes)
        self.limit = max(self.window, min(self.window + self.slack, numbers_fit))

    def _fits(self, size: int | None) -> bool:
        """May one more item go now? Within the window always; beyond it within the slack while
        the bytes in flight, with this item's ``size`` (None: a number), stay within budget."""
        out = self.outstanding
        if out < self.window:
            return True
        if size is None:
            return out < self.limit
        if out >= self.window + self.slack:
            return False
        numbers = (out - len(self._sizes)) * NUMBER_BYTES
        return self.inflight_bytes + numbers + size <= SLACK_BYTES

    def room(self) -> int:
        """Items that may go now: for a blocked send, whether the item it holds fits; else the
        slack counts while the bytes in flight are within budget (what a group's distribution
        compares between members)."""
        waiting = self._waiting
        if waiting is not _NOT_WAITING:
            return 1 if self._fits(waiting) else 0  # type: ignore[arg-type]
        return self.limit - self.outstanding

    def add_room_listener(self, fut: asyncio.Future[None]) -> None:
        self._listeners.append(fut)

    def send(self, item: Any, activity: Activity) -> Awaitable[None]:
        if type(item) in _NUMBERS:
            if self.outstanding < self.limit:
                self._put_plain(item)
                return SENT
            return self._send_later(item, None, [], None, activity)
        packed = item if is_plain(item) else packable_copy(item)
        if packed is not NOT_PACKABLE:  # a plain value, or a snapshot of a small record
            size = packed_bytes(packed)
            if self._fits(size):
                self._put_packed(packed, size)
                return SENT
            return self._send_later(packed, None, [], size, activity)
        # Serialize first: the size decides whether the item may use the slack.
        body, buffers = dumps(item, self._max_bytes, *self._where)
        size = len(body) + sum(b.raw().nbytes for b in buffers) if buffers else len(body)
        if self._fits(size):
            self._put(body, buffers, size)
            return SENT
        return self._send_later(None, body, buffers, size, activity)

    async def _send_later(
        self, item: Any, body: bytes | None, buffers: list[Any], size: int | None, activity: Activity
    ) -> None:
        self._waiting = size
        # Nothing more can go on this edge until credit comes back: send what is batched now,
        # rather than when this worker's loop next goes idle.
        self.link.flush()
        try:
            while not self._fits(size):
                fut = asyncio.get_running_loop().create_future()
                self._waiter = fut
                activity.set(WAIT_OUT, self)
                try:
                    await fut
                finally:
                    self._waiter = None
                    activity.set(RUN)
        finally:
            self._waiting = _NOT_WAITING
        if body is not None:
            self._put(body, buffers, size)  # type: ignore[arg-type]
        elif size is None:
            self._put_plain(item)
        else:
            self._put_packed(item, size)

    def _put_plain(self, item: Any) -> None:
        self.link.add_plain(self.edge_id, self.seq, item)
        self.seq += 1
        self.outstanding += 1

    def _put_packed(self, item: Any, size: int) -> None:
        self.link.add_plain(self.edge_id, self.seq, item)
        self._account(size)

    def _put(self, body: bytes, buffers: list[Any], size: int) -> None:
        self.link.add_item(self.edge_id, self.seq, body, buffers)
        self._account(size)

    def _account(self, size: int) -> None:
        self._sizes.append((self.seq, size))
        self.inflight_bytes += size
        self.seq += 1
        self.outstanding += 1
        if self.slack:
            self._set_limit()

    def add_credit(self, n: int) -> None:
        self.outstanding -= n
        self._credited += n
        sizes = self._sizes
        if sizes:
            while sizes and sizes[0][0] < self._credited:
                self.inflight_bytes -= sizes.popleft()[1]
            if self.slack:
                self._set_limit()
        fut = self._waiter
        if fut is not None and not fut.done():
            fut.set_result(None)
        if self._listeners:
            for fut in self._listeners:
                if not fut.done():
                    fut.set_result(None)
            self._listeners.clear()

    def close(self) -> None:
        self.link.add_eos(self.edge_id, self.seq)

    def sender(self, port: OutputPort) -> Callable[[Any], Awaitable[None]]:
        """``port.send`` when this is the port's only edge: numbers with credit to spare
        go straight onto the link (``_put_plain`` written out: this is the hot path); anything
        else takes ``send``."""
        add_plain = self.link.add_plain
        edge_id = self.edge_id
        numbers = _NUMBERS

        def send(item: Any) -> Awaitable[None]:
            if type(item) in numbers and self.outstanding < self.limit:
                add_plain(edge_id, self.seq, item)
                self.seq += 1
                self.outstanding += 1
                return SENT
            return self.send(item, port._activity)

        return send
