"""Firing rules as pure decisions, table-driven (no sockets, no event loop)."""

import pytest

from cascata._plan import FiringGroup
from cascata.worker.firing import Batcher, Zip, is_source, resolve_groups


@pytest.mark.parametrize(
    ("inports", "declared", "expected"),
    [
        # all constant: a source
        ([("n", True)], [], ()),
        ([], [], ()),
        # default: all streaming ports form one synchronized group; constants excluded
        ([("a", False), ("k", True), ("b", False)], [], (FiringGroup(("a", "b"), True),)),
        # clk on one port: the other streaming port is a listener
        (
            [("a", False), ("b", False)],
            [(("a",), True)],
            (FiringGroup(("a",), True), FiringGroup(("b",), False)),
        ),
        # two clk groups
        (
            [("a", False), ("b", False)],
            [(("a",), True), (("b",), True)],
            (FiringGroup(("a",), True), FiringGroup(("b",), True)),
        ),
        # sync of two, third listens
        (
            [("a", False), ("b", False), ("c", False)],
            [(("a", "b"), True)],
            (FiringGroup(("a", "b"), True), FiringGroup(("c",), False)),
        ),
        # a declared group naming only constants falls back to the default group
        ([("a", False), ("k", True)], [(("k",), True)], (FiringGroup(("a",), True),)),
    ],
)
def test_resolve_groups(inports, declared, expected):
    assert resolve_groups(inports, declared) == expected


def test_is_source_only_without_groups():
    assert is_source(())
    assert not is_source((FiringGroup(("a",), True),))


@pytest.mark.parametrize(
    ("ports", "events", "fired", "exhausted"),
    [
        (("a", "b"), [("a", 1), ("b", 2)], [(1, 2)], False),
        (("a", "b"), [("b", 2), ("a", 1), ("a", 3), ("b", 4)], [(1, 2), (3, 4)], False),
        (("a", "b"), [("a", 1), ("end", "b")], [], True),
        (("a", "b"), [("a", 1), ("b", 2), ("end", "a"), ("b", 3)], [(1, 2)], True),
        (("a",), [("a", 1), ("a", 2)], [(1,), (2,)], False),
    ],
)
def test_zip_fires_on_complete_tuples_and_ends_with_any_port(ports, events, fired, exhausted):
    z = Zip(ports)
    out = []
    for kind, value in events:
        if kind == "end":
            z.end(value)
        else:
            r = z.offer(kind, value)
            if r is not None:
                out.append(r)
    assert out == fired
    assert z.exhausted == exhausted


def test_zip_refuses_a_second_item_for_the_same_slot():
    z = Zip(("a", "b"))
    z.offer("a", 1)
    assert z.missing() == ["b"]
    with pytest.raises(ValueError, match="offered twice"):
        z.offer("a", 2)


@pytest.mark.parametrize(
    ("size", "n", "batches"),
    [
        (3, 7, [[0, 1, 2], [3, 4, 5], [6]]),
        (3, 6, [[0, 1, 2], [3, 4, 5]]),
        (3, 0, []),
        (0, 4, [[0, 1, 2, 3]]),
        (0, 0, []),
        (1, 2, [[0], [1]]),
    ],
)
def test_batcher(size, n, batches):
    b = Batcher(size)
    out = [x for x in (b.add(i) for i in range(n)) if x is not None]
    last = b.end()
    if last is not None:
        out.append(last)
    assert out == batches
