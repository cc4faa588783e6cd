"""How far ahead a publisher distributing over a component group may send to each member.

Strict round robin over members with deep buffers gives each member the same number of items
whatever they cost: with every 4th item expensive, one member gets all of them. So each
member's backlog has a cap, revised every PACE_WINDOW seconds from the items it took: a member
that took all it was allowed (or ran dry) may have twice as many; one that took fewer is held
to about PACE_SECONDS of its measured rate, at least one item. A member slowed by expensive
items is then sent fewer, while members working through cheap items at tens of thousands a
second soon reach their full buffers, also when credit round trips are slow (a rate measured
over a round trip longer than the window would only ever shrink the cap). Pure bookkeeping:
no I/O, no clock.
"""

from __future__ import annotations

# Seconds of a member's work kept queued for it: long enough to cover a credit round trip on
# a busy machine (a remote member stays busy), short enough that queued work on one member
# cannot hold the group's tail back by much.
PACE_SECONDS = 0.01
# Seconds over which a member's progress is measured before its cap is revised.
PACE_WINDOW = 0.03
# Backlog a member starts with, before its rate is known: a burst is spread a few at a time.
PACE_START = 2


class Pace:
    """The backlog one group member may have (``cap``), resized from the items it took."""

    __slots__ = ("most", "cap", "_since", "_taken")

    def __init__(self, most: int) -> None:
        self.most = most
        self.cap = max(1, min(PACE_START, most))
        self._since = -1.0
        self._taken = 0

    def allows(self, backlog: int, taken: int, now: float) -> bool:
        """May one more item go to a member with ``backlog`` items queued, which has taken
        ``taken`` items in all, at time ``now`` (seconds)?"""
        elapsed = now - self._since
        if elapsed >= PACE_WINDOW:
            if self._since >= 0:
                took = taken - self._taken
                if took >= self.cap or backlog == 0:
                    self.cap = min(self.most, 2 * self.cap)
                else:
                    self.cap = max(1, min(self.cap, int(took * PACE_SECONDS / elapsed) + 1))
            self._since, self._taken = now, taken
        return backlog < self.cap
