"""Run-time input side: bounded input channels, and what each component is doing.

Guarantees: items from one publisher arrive in send order; an input buffer holds at most
``capacity`` items from publishers in this worker, plus at most each remote publisher's credit
window (``capacity`` split between publishers, at least 1, plus a slack for plain values), so memory
stays bounded whatever the speed difference; a port ends after every publisher's end of stream,
once its buffer is drained. Activities feed quiescence detection and deadlock reports.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from time import perf_counter as _clock
from typing import Any

from .._plan import EdgePlan, InPortPlan


class _End:
    """Returned by reads of an exhausted port."""

    def __repr__(self) -> str:
        return "END"


END = _End()
EMPTY = object()  # poll() found nothing ready

RUN = "running"
WAIT_IN = "waiting for input"
WAIT_OUT = "blocked sending"
DONE = "done"


class Tracker:
    """Per-worker counters read by quiescence detection: cheap integer bumps on state changes."""

    __slots__ = ("events", "msgs_sent", "msgs_received")

    def __init__(self) -> None:
        self.events = 0
        self.msgs_sent = 0
        self.msgs_received = 0


class Activity:
    """What one component is doing now: running, waiting for input on a channel, or blocked;
    and how long it has spent in each state (for the run report and the progress view).

    Time is accounted per state change, which happens per batch of items, not per item."""

    __slots__ = ("label", "state", "on", "tracker", "since", "busy", "blocked", "waiting")

    def __init__(self, label: str, tracker: Tracker) -> None:
        self.label = label
        self.state = RUN
        self.on: Any = None
        self.tracker = tracker
        self.since = _clock()
        self.busy = self.blocked = self.waiting = 0.0

    def set(self, state: str, on: Any = None) -> None:
        now = _clock()
        old = self.state
        if old == RUN:
            self.busy += now - self.since
        elif old == WAIT_IN:
            self.waiting += now - self.since
        elif old == WAIT_OUT:
            self.blocked += now - self.since
        self.since = now
        self.state = state
        self.on = on
        self.tracker.events += 1

    def restart_clock(self) -> None:
        """Count from now: time before the run starts (GO) is nobody's busy time."""
        self.since = _clock()
        self.busy = self.blocked = self.waiting = 0.0

    def times(self) -> tuple[float, float, float]:
        """Seconds (busy, blocked sending, waiting for input) so far, the current state included."""
        busy, blocked, waiting = self.busy, self.blocked, self.waiting
        now = _clock()
        if self.state == RUN:
            busy += now - self.since
        elif self.state == WAIT_IN:
            waiting += now - self.since
        elif self.state == WAIT_OUT:
            blocked += now - self.since
        return busy, blocked, waiting

    def idle(self) -> bool:
        """True when nothing can wake this component without another component acting."""
        if self.state == DONE:
            return True
        if self.state == WAIT_IN:
            return not self.on.readable()
        if self.state == WAIT_OUT:
            return self.on.room() <= 0
        return False


class _Credit:
    """Credit owed to one remote publisher: taken items not yet reported back.

    With a slack (no capacity given) credit goes back with the link's next flush, in few
    messages. Without one (a given, exact capacity) the publisher is held by its window alone:
    credit goes back at once, after half a window or when the buffer runs dry, as a
    hand-written credit window would."""

    __slots__ = ("send", "pending", "half", "window", "quarter")

    def __init__(
        self, send: Callable[[int, int], None], window: int, slack: int,
        send_now: Callable[[int, int], None],
    ) -> None:
        self.send = send if slack else send_now
        self.pending = 0
        self.half = max(1, window // 2)
        self.window = window
        self.quarter = max(1, (window + slack) // 4) if slack else self.half


class InputChannel:
    """The receiving side of one input port: a bounded buffer fed by local and remote publishers."""

    def __init__(self, plan: InPortPlan, label: str, tracker: Tracker) -> None:
        self.full_name = label
        self.capacity = plan.capacity
        self.exact = plan.exact  # the capacity was given: no publisher runs beyond it
        self.batch_size = plan.batch_size
        # Items, and beside them the edge each came on, kept only when there are several
        # publishers (with one, the edge is always the same): the hot path builds no tuples.
        self._buffer: deque[Any] = deque()
        self._edges: deque[int] | None = deque() if len(plan.publishers) > 1 else None
        self._solo = plan.publishers[0] if len(plan.publishers) == 1 else -1
        self._open = set(plan.publishers)
        self._forced = False
        self._draining = False
        self._seed: list[Any] = [plan.initial] if plan.has_initial and plan.publishers else []
        self._waiter: asyncio.Future[None] | None = None
        self._room_waiters: deque[asyncio.Future[None]] = deque()
        self._credit: dict[int, _Credit] = {}  # remote publishers' edges
        self._tracker = tracker
        self.received = 0
        self.discarded = 0

    # -- state ----------------------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self._forced or not self._open

    def readable(self) -> bool:
        """A read would return now (an item, a seed, or the end)."""
        return bool(self._buffer) or bool(self._seed) or self.ended

    def room(self) -> int:
        return self.capacity - len(self._buffer) if not self._draining else self.capacity

    def statistics(self) -> dict[str, Any]:
        return {
            "buffered": len(self._buffer),
            "capacity": self.capacity,
            "exact": self.exact,
            "publishers_open": len(self._open),
            "received": self.received,
            "discarded": self.discarded,
        }

    # -- publisher side -------------------------------------------------------------------------

    def add_remote_publisher(
        self, edge: EdgePlan, send_credit: Callable[[int, int], None],
        send_credit_now: Callable[[int, int], None],
    ) -> None:
        """Credit for ``edge`` goes back through ``send_credit`` (with the link's next flush)
        or ``send_credit_now`` (at once), see _Credit."""
        self._credit[edge.edge_id] = _Credit(send_credit, edge.window, edge.slack, send_credit_now)

    async def put(self, edge: int, item: Any, activity: Activity, limit: int) -> None:
        """Append an item from a publisher in this worker, waiting while ``limit`` items are
        buffered (the capacity, plus a slack for plain values)."""
        while len(self._buffer) >= limit and not self._draining and not self._forced:
            fut = asyncio.get_running_loop().create_future()
            self._room_waiters.append(fut)
            activity.set(WAIT_OUT, self)
            try:
                await fut
            finally:
                activity.set(RUN)
        self._append(edge, item)

    def deliver(self, edge: int, items: list[Any]) -> None:
        """Append items that arrived from a remote publisher (bounded by its credit)."""
        if self._draining:
            for item in items:
                self._append(edge, item)
            return
        self.received += len(items)
        self._buffer.extend(items)
        if self._edges is not None:
            self._edges.extend([edge] * len(items))
        self._wake()

    def _append(self, edge: int, item: Any) -> None:
        self.received += 1
        if self._draining:
            self.discarded += 1
            self._taken(edge)
            return
        self._buffer.append(item)
        if self._edges is not None:
            self._edges.append(edge)
        self._wake()

    def publisher_done(self, edge: int) -> None:
        self._open.discard(edge)
        self._tracker.events += 1
        self._wake()

    def force_end(self) -> None:
        """End this port now: the graph is quiescent, nothing more can arrive."""
        self._forced = True
        self._wake()
        self._wake_room()

    def drain(self) -> None:
        """The consumer has finished: discard what is buffered and anything that still arrives,
        returning credit so publishers never block on a port nobody reads."""
        self._draining = True
        while self._buffer:
            self._take()
            self.discarded += 1
        self._flush_credit()
        self._wake()
        self._wake_room()

    # -- consumer side --------------------------------------------------------------------------

    def poll(self) -> Any:
        """The next item if one is ready now, else EMPTY (then ``await get()``)."""
        if self._buffer and not self._seed:
            return self._take()
        return EMPTY

    async def get(self, activity: Activity) -> Any:
        """The next item, or END once every publisher has finished and the buffer is empty."""
        while True:
            if self._seed:
                return self._seed.pop()
            if self._buffer:
                return self._take()
            if self.ended or self._draining:
                return END
            fut = asyncio.get_running_loop().create_future()
            self._waiter = fut
            activity.set(WAIT_IN, self)
            try:
                await fut
            finally:
                self._waiter = None
                activity.set(RUN)

    def _take(self) -> Any:
        item = self._buffer.popleft()
        edge = self._edges.popleft() if self._edges is not None else self._solo
        if self._room_waiters or self._credit:  # else nobody needs to hear of it
            self._taken(edge)
        return item

    def _taken(self, edge: int) -> None:
        if self._room_waiters:
            self._wake_room()
        credit = self._credit.get(edge)
        if credit is None:
            return
        pending = credit.pending = credit.pending + 1
        # Return credit when the buffer runs dry or after half a window, but when the buffer is
        # deep (a stream of small items) only every quarter of window + slack, so credit
        # messages stay few.
        buf = self._buffer
        if pending >= credit.quarter or not buf or (pending >= credit.half and len(buf) < credit.window):
            credit.send(edge, pending)
            credit.pending = 0

    def _flush_credit(self) -> None:
        for edge, credit in self._credit.items():
            if credit.pending:
                credit.send(edge, credit.pending)
                credit.pending = 0

    def _wake(self) -> None:
        fut = self._waiter
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _wake_room(self) -> None:
        while self._room_waiters:
            fut = self._room_waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
