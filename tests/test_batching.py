"""Batching: ``out >>= inp`` delivers one list of every item, ``out >> n >= inp`` lists of n."""

from collections import Counter

import pytest

from cascata import Graph, component, inport, persist
from tests.components import Collect, Count, Pass, run_collect


@component
@inport("x")
@inport("y")
@persist("sink", lambda lst: lst)
async def CollectPair(x, y, sink):
    sink.get().append((x, y))


def test_batch_operators_record_the_batch_size():
    g = Graph()
    g.src = Count
    g.a = Collect
    g.b = Collect
    g.c = Collect
    g.src.out >>= g.a.x
    g.src.out >> 3 >= g.b.x
    g.src.out >> g.c.x
    assert (g.a.x.batch_size, g.b.x.batch_size, g.c.x.batch_size) == (0, 3, None)


def test_batch_of_zero_is_refused_pointing_at_the_all_items_operator():
    g = Graph()
    g.src = Count
    g.a = Collect
    with pytest.raises(ValueError, match="use '>>=' for one list"):
        g.src.out >> 0 >= g.a.x


@pytest.mark.parametrize("n", [1, 7, 500])
def test_irshift_delivers_all_items_as_one_list(n):
    g = Graph()
    g.src = Count
    g.c = Collect
    g.src.n < n
    g.src.out >>= g.c.x
    assert run_collect(g) == [list(range(n))]


@pytest.mark.parametrize(("n", "size"), [(7, 3), (6, 3), (1, 3), (10, 1), (5, 8)])
def test_batch_of_n_delivers_lists_of_n_and_a_shorter_last(n, size):
    g = Graph()
    g.src = Count
    g.c = Collect
    g.src.n < n
    g.src.out >> size >= g.c.x
    items = list(range(n))
    expected = [items[i : i + size] for i in range(0, n, size)]
    assert run_collect(g) == expected


def test_all_items_batch_merges_every_publisher_of_the_port():
    g = Graph()
    g.a = Count
    g.b = Count
    g.c = Collect
    g.a.n < 20
    g.b.n < 20
    g.b.start < 100
    g.a.out >>= g.c.x
    g.b.out >>= g.c.x
    (batch,) = run_collect(g)
    assert sorted(batch) == list(range(20)) + list(range(100, 120))
    assert [x for x in batch if x < 100] == list(range(20))  # per-publisher order kept


@pytest.mark.parametrize("count", [0, 1, 7, 100])
def test_all_items_batch_from_a_group(count):
    g = Graph()
    g.src = Count
    g.ws = Pass * 3
    g.c = Collect
    g.src.n < count
    g.src.out >> g.ws.x
    g.ws.out >>= g.c.x
    got = run_collect(g)
    if count:
        assert len(got) == 1 and sorted(got[0]) == list(range(count))
    else:
        assert got == []  # no item: no batch, the sink never fires


@pytest.mark.parametrize("count", [1, 7, 100])
def test_batches_of_three_from_a_group(count):
    g = Graph()
    g.src = Count
    g.ws = Pass * 4
    g.c = Collect
    g.src.n < count
    g.src.out >> g.ws.x
    g.ws.out >> 3 >= g.c.x
    got = run_collect(g)
    assert [len(b) for b in got] == [3] * (count // 3) + ([count % 3] if count % 3 else [])
    assert sorted(x for b in got for x in b) == list(range(count))


def test_batches_into_a_group_are_made_per_member():
    g = Graph()
    g.src = Count
    g.cs = Collect * 3
    g.src.n < 50
    g.src.out >> 4 >= g.cs.x
    got = run_collect(g)
    assert Counter(x for b in got for x in b) == Counter(range(50))
    # each member's last batch may be short; every other batch is full
    assert sum(1 for b in got if len(b) < 4) <= 3
    assert all(1 <= len(b) <= 4 for b in got)


def test_batched_port_zips_with_an_item_port_in_sync():
    g = Graph()
    g.nums = Count
    g.tags = Count
    g.pair = CollectPair
    g.nums.n < 7
    g.tags.n < 10
    g.tags.start < 100
    g.nums.out >> 2 >= g.pair.x
    g.tags.out >> g.pair.y
    g.pair.sync(g.pair.x, g.pair.y)
    assert run_collect(g) == [([0, 1], 100), ([2, 3], 101), ([4, 5], 102), ([6], 103)]


def test_two_batched_ports_zip_batch_by_batch():
    g = Graph()
    g.a = Count
    g.b = Count
    g.pair = CollectPair
    g.a.n < 6
    g.b.n < 4
    g.b.start < 10
    g.a.out >> 3 >= g.pair.x
    g.b.out >>= g.pair.y
    g.pair.sync(g.pair.x, g.pair.y)
    assert run_collect(g) == [([0, 1, 2], [10, 11, 12, 13])]


def test_clk_on_a_batched_port_with_a_constant():
    g = Graph()
    g.a = Count
    g.pair = CollectPair
    g.a.n < 9
    g.a.out >> 3 >= g.pair.x
    g.pair.y < "const"
    g.pair.clk(g.pair.x)
    assert run_collect(g) == [
        ([0, 1, 2], "const"),
        ([3, 4, 5], "const"),
        ([6, 7, 8], "const"),
    ]
