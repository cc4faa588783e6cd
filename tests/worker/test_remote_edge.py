"""RemoteEdge's credit: the window always, the slack only for small items (no sockets here)."""

import asyncio

import pytest

from cascata._plan import EdgePlan
from cascata.worker import ports
from cascata.worker.inputs import Activity, Tracker
from cascata.worker.ports import SENT, RemoteEdge


class FakeLink:
    """Records what the edge puts on its link."""

    def __init__(self):
        self.sent = []

    def add_plain(self, edge, seq, item):
        self.sent.append((seq, "plain"))

    def add_item(self, edge, seq, body, buffers):
        self.sent.append((seq, len(body)))

    def add_eos(self, edge, total):
        self.sent.append(("eos", total))

    def set_batch_limit(self, edge, items):
        self.batch_limit = items

    def flush(self):
        self.sent.append("flush")


def _edge(monkeypatch, window=2, slack=3, budget=1000):
    monkeypatch.setattr(ports, "SLACK_BYTES", budget)
    plan = EdgePlan(0, "a", "out", "b", "x", 0, 1, window, slack)
    link = FakeLink()
    return RemoteEdge(plan, link, 1 << 30), link


def _try(edge, item):
    """True if the send went out at once; a send that would wait is abandoned."""
    result = edge.send(item, Activity("a@A", Tracker()))
    if result is SENT:
        return True
    result.close()  # the coroutine that would wait for credit
    return False


def test_plain_values_use_window_and_slack_by_count(monkeypatch):
    edge, link = _edge(monkeypatch)
    assert [_try(edge, i) for i in range(6)] == [True] * 5 + [False]
    assert edge.room() == 0 and edge.inflight_bytes == 0


def test_small_flat_records_travel_packed_like_plain_values(monkeypatch):
    edge, link = _edge(monkeypatch, budget=10_000)
    assert [_try(edge, {"i": i, "tag": "x"}) for i in range(6)] == [True] * 5 + [False]
    assert [kind for _, kind in link.sent] == ["plain"] * 5
    assert 0 < edge.inflight_bytes < 5 * 100  # counted by their packed size's bound


def test_small_records_beyond_the_window_count_against_the_byte_budget(monkeypatch):
    edge, link = _edge(monkeypatch, window=2, slack=100, budget=1000)
    record = {f"k{j:02d}": "v" * 10 for j in range(8)}  # 8 + 8 * (3 + 6 + 10 + 6) = 208 bytes
    sent = [_try(edge, dict(record)) for _ in range(8)]
    assert sent == [True] * 4 + [False] * 4 and edge.inflight_bytes == 4 * 208


def test_numbers_share_the_byte_budget_with_other_items(monkeypatch):
    edge, link = _edge(monkeypatch, window=1, slack=1000, budget=1000)
    assert _try(edge, (0, b"x" * 600))  # the window
    big = edge.inflight_bytes
    assert 600 < big < 700
    # what is left of the budget, in numbers of 16 bytes each
    assert sum(_try(edge, i) for i in range(100)) == (1000 - big) // 16
    edge.add_credit(1)  # the big item is taken: the numbers may fill the whole budget
    assert sum(_try(edge, i) for i in range(100)) == 1000 // 16 - (1000 - big) // 16


def test_a_given_capacity_has_no_slack_whatever_the_item(monkeypatch):
    for item in (7, "seven", {"n": 7}, (7, b"x" * 100)):
        edge, link = _edge(monkeypatch, window=3, slack=0, budget=1 << 20)
        assert [_try(edge, item) for _ in range(5)] == [True] * 3 + [False] * 2


def test_other_small_items_use_the_slack_while_the_bytes_in_flight_stay_under_budget(monkeypatch):
    edge, link = _edge(monkeypatch, budget=10_000)
    assert [_try(edge, {"i": i, "nested": [i]}) for i in range(6)] == [True] * 5 + [False]
    assert 0 < edge.inflight_bytes < 10_000


def test_large_items_stop_at_the_window(monkeypatch):
    edge, link = _edge(monkeypatch, budget=1000)
    big = b"x" * 600
    # two fit the window whatever their size; a third would push the bytes over the budget
    assert [_try(edge, (i, big)) for i in range(3)] == [True, True, False]
    assert edge.room() == 0


def test_credit_retires_the_oldest_items_bytes(monkeypatch):
    edge, link = _edge(monkeypatch, budget=2000)
    big = b"x" * 600
    assert _try(edge, (0, big)) and _try(edge, 1) and _try(edge, (2, big))
    held = edge.inflight_bytes
    assert held > 1200
    edge.add_credit(1)  # the consumer took item 0 (600 bytes)
    assert 600 <= edge.inflight_bytes <= held - 600
    edge.add_credit(2)  # items 1 (plain) and 2
    assert edge.inflight_bytes == 0 and edge.outstanding == 0


@pytest.mark.timeout(10)
def test_a_blocked_send_reports_no_room_until_credit_makes_its_item_fit(monkeypatch):
    edge, link = _edge(monkeypatch, window=1, slack=3, budget=1000)
    big = b"x" * 700

    async def scenario():
        activity = Activity("a@A", Tracker())
        assert edge.send((0, big), activity) is SENT  # the window
        task = asyncio.ensure_future(edge.send((1, big), activity))
        await asyncio.sleep(0)
        assert not task.done() and edge.room() == 0 and activity.idle()
        edge.add_credit(1)
        await asyncio.wait_for(task, 1)
        return link.sent

    # the blocked send flushes what is batched before it waits for credit
    assert [s if s == "flush" else s[0] for s in asyncio.run(scenario())] == [0, "flush", 1]
