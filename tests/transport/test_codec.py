import pickle
from collections import OrderedDict

import numpy as np
import pytest

from cascata.errors import ItemTooLargeError, SerializationError
from cascata.transport import codec


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return (self.x, self.y) == (other.x, other.y)


@pytest.mark.parametrize(
    "item", [1, 2**100, "text", b"bytes", (1, "a"), {"k": [1, 2]}, None, Point(1, 2), {1, 2}]
)
def test_round_trip_keeps_value_and_type(item):
    body, bufs = codec.dumps(item, 1 << 30)
    out = codec.loads(body, [b.raw() for b in bufs])
    assert out == item and type(out) is type(item)


def test_large_array_travels_out_of_band_without_copy_on_send():
    arr = np.arange(100_000, dtype=np.float64)
    body, bufs = codec.dumps(arr, 1 << 30)
    assert len(bufs) == 1 and len(body) < 1000
    out = codec.loads(body, [b.raw() for b in bufs])
    assert np.array_equal(out, arr)


def test_small_array_stays_in_band():
    body, bufs = codec.dumps(np.arange(10), 1 << 30)
    assert bufs == []


def test_lambda_falls_back_to_dill():
    body, bufs = codec.dumps(lambda x: x + 1, 1 << 30)
    assert codec.loads(body, [])(1) == 2


def test_unserializable_item_names_component_port_and_type():
    gen = (i for i in range(3))
    with pytest.raises(SerializationError, match=r"src sent an item of type generator on port 'out'"):
        codec.dumps(gen, 1 << 30, "src", "out")


def test_item_over_the_limit_is_refused_with_the_sizes():
    with pytest.raises(ItemTooLargeError, match=r"of \d+ bytes, over max_item_bytes=100"):
        codec.dumps(b"x" * 1000, 100, "src", "out")


def test_serialization_error_survives_pickling():
    err = SerializationError("a", "b", "c", "d")
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is SerializationError and str(again) == str(err) and again.port == "b"


@pytest.mark.parametrize(
    ("item", "plain"),
    [
        (1, True), (1.5, True), (None, True), (True, True), ("s" * 256, True), (b"b", True),
        ((1, "a", None), True), ("s" * 257, False), ((1, [2]), False), ([1], False),
        (("s" * 128, b"b" * 128), True), (("s" * 128, b"b" * 129), False),
        (tuple(range(9)), False), (np.int64(3), False), (Point(1, 2), False),
    ],
)
def test_is_plain(item, plain):
    assert codec.is_plain(item) is plain


def test_packed_round_trip_and_count_check():
    items = [1, "two", (3, None), 4.5]
    body = codec.dumps_packed(items)
    assert codec.loads_packed(body, 4) == items
    with pytest.raises(ValueError, match="header says 5"):
        codec.loads_packed(body, 5)


@pytest.mark.parametrize(
    ("item", "packable"),
    [
        ({"v": 1, "name": "row"}, True), ([1, "a", None, 2.5], True), ({}, True), ([], True),
        ({i: i for i in range(16)}, True), ({i: i for i in range(17)}, False),
        ({"k": "s" * 250, "x": 1}, True), ({"k": "s" * 256}, False),  # keys count too
        ({"nested": [1]}, False), ([{"a": 1}], False), ({(1, 2): 3}, False),
        (OrderedDict(a=1), False), (np.int64(3), False), ((1, 2), False), (None, False),
    ],
)
def test_packable_copy_takes_small_flat_records_only(item, packable):
    copy = codec.packable_copy(item)
    if packable:
        assert copy == item and copy is not item and type(copy) is type(item)
    else:
        assert copy is codec.NOT_PACKABLE
