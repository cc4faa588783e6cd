"""The receiving side of a link: sequence checks catch lost items; malformed input is named."""

import pytest

from cascata.errors import ProtocolError, SerializationError
from cascata.transport import frames as wire
from cascata.transport.channel import Dispatcher
from cascata.transport.codec import dumps, dumps_packed
from cascata.worker.inputs import Tracker


class FakeChannel:
    def __init__(self):
        self.items = []
        self.done = []

    def deliver(self, edge, items):
        self.items.extend(items)

    def publisher_done(self, edge):
        self.done.append(edge)


class FakePublisher:
    def __init__(self):
        self.credit = 0

    def add_credit(self, n):
        self.credit += n


def _dispatcher():
    ch, pub = FakeChannel(), FakePublisher()
    return Dispatcher({1: (ch, "'a.out' -> 'b.x'")}, {2: pub}, Tracker()), ch, pub


def _data(edge, seq, items):
    parts = [dumps(i, 1 << 20) for i in items]
    return wire.encode_data(edge, seq, [b for b, _ in parts], [[] for _ in parts])


def test_items_in_sequence_are_delivered_and_eos_with_the_right_count_ends():
    d, ch, _ = _dispatcher()
    d.handle(_data(1, 0, ["a", "b"]))
    d.handle(wire.encode_packed(1, 2, 2, dumps_packed([3, 4])))
    d.handle(wire.encode_eos(1, 4))
    assert ch.items == ["a", "b", 3, 4] and ch.done == [1]


def test_a_gap_in_sequence_numbers_is_reported_as_lost_items():
    d, _, _ = _dispatcher()
    d.handle(_data(1, 0, ["a"]))
    lost = r"items lost on connection 'a.out' -> 'b.x': expected item #1, got #3"
    with pytest.raises(ProtocolError, match=lost):
        d.handle(_data(1, 3, ["d"]))


def test_end_of_stream_with_a_higher_count_than_arrived_is_reported():
    d, _, _ = _dispatcher()
    d.handle(_data(1, 0, ["a"]))
    with pytest.raises(ProtocolError, match=r"the publisher sent 5 items, 1 arrived"):
        d.handle(wire.encode_eos(1, 5))


def test_credit_reaches_the_publisher_and_unknown_edges_are_refused():
    d, _, pub = _dispatcher()
    d.handle(wire.encode_credit(2, 7))
    assert pub.credit == 7
    with pytest.raises(ProtocolError, match="credit for unknown edge 9"):
        d.handle(wire.encode_credit(9, 1))
    with pytest.raises(ProtocolError, match="data for unknown edge 9"):
        d.handle(_data(9, 0, ["x"]))


def test_an_item_that_cannot_be_rebuilt_names_the_connection():
    d, _, _ = _dispatcher()
    bad = wire.encode_data(1, 0, [b"\x80\x05garbage"], [[]])
    with pytest.raises(SerializationError, match=r"on connection 'a.out' -> 'b.x' could not be deserialized"):
        d.handle(bad)


def test_anything_after_an_end_of_stream_is_refused_not_delivered():
    d, ch, _ = _dispatcher()
    d.handle(wire.encode_eos(1, 0))
    with pytest.raises(ProtocolError, match=r"items on connection 'a.out' -> 'b.x' after its end"):
        d.handle(_data(1, 0, ["late"]))
    with pytest.raises(ProtocolError, match="a second end of stream on connection"):
        d.handle(wire.encode_eos(1, 0))
    assert ch.items == [] and ch.done == [1]


def test_an_item_over_the_size_limit_is_refused_before_it_is_unpickled():
    ch = FakeChannel()
    d = Dispatcher({1: (ch, "'a.out' -> 'b.x'")}, {}, Tracker(), max_item_bytes=100)
    d.handle(_data(1, 0, [b"x" * 50, b"y" * 50]))  # the message is larger, each item is not
    with pytest.raises(ProtocolError, match=r"an item of \d+ bytes .* over max_item_bytes=100"):
        d.handle(wire.encode_data(1, 2, [b"\x80\x05garbage" + b"\0" * 200], [[]]))
    assert ch.items == [b"x" * 50, b"y" * 50]
