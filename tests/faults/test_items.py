"""Case 10 of the fault suite: items that cannot be serialized, that fail to deserialize on the
receiving side, or that are over the size limit; each a named error from the side where it
happens, mid-stream, and the run stops."""

from __future__ import annotations

import pickle

import pytest

from cascata import Graph, ItemTooLargeError, SerializationError, component, inport, outport

from .ledger import LedgerSink, LedgerSource
from .tools import deadline

N = 100
AT = 40


class RefusesPickle:
    """Neither pickle nor dill can write it."""

    def __reduce__(self):
        raise TypeError("RefusesPickle cannot be pickled")


def _explode():
    raise ImportError("module 'gone_on_this_side' not found")


class FailsToLoad:
    """Writes fine; rebuilding it raises (as a class missing on the receiving host would)."""

    def __reduce__(self):
        return (_explode, ())


def _spoiled(how: str):
    if how == "generator":
        return (i for i in range(3))
    if how == "refuses-pickle":
        return RefusesPickle()
    if how == "fails-to-load":
        return FailsToLoad()
    if how == "too-large":
        return b"x" * 5000
    raise AssertionError(how)


@component
@inport("x")
@inport("how")
@outport("out")
async def Spoil(x, how, out):
    """Passes items on, replacing item AT's payload with a bad one."""
    pub, seq, value = x
    await out.send((pub, seq, _spoiled(how)) if seq == AT else x)


def _graph(ledger, how):
    g = Graph()
    g.src = LedgerSource
    g.spoil = Spoil
    g.sink = LedgerSink
    g.src.n < N
    g.spoil.how < how
    g.sink.ledger < ledger
    g.src.out >> g.spoil.x
    g.spoil.out >> g.sink.x
    return g


@pytest.mark.parametrize(
    ("how", "type_name"), [("generator", "tuple"), ("refuses-pickle", "tuple")]
)
def test_unserializable_item_is_named_at_the_sending_side(how, type_name, ledger):
    with deadline(f"10: unserializable item ({how})"), pytest.raises(SerializationError) as info:
        _graph(ledger, how).run(3)
    err = info.value
    assert err.component == "spoil@Spoil" and err.port == "out"
    assert err.item_type == type_name
    assert pickle.loads(pickle.dumps(err)).component == "spoil@Spoil"
    assert "cannot be serialized" in str(err)


def test_item_failing_to_deserialize_is_named_at_the_receiving_side(ledger):
    with deadline("10: item fails to deserialize"), pytest.raises(SerializationError) as info:
        _graph(ledger, "fails-to-load").run(3)
    msg = str(info.value)
    assert "on connection 'spoil.out' -> 'sink.x' could not be deserialized" in msg
    assert "gone_on_this_side" in msg


def test_item_over_the_size_limit_is_named_at_the_sending_side(ledger):
    with deadline("10: item over max_item_bytes"), pytest.raises(ItemTooLargeError) as info:
        _graph(ledger, "too-large").run(3, max_item_bytes=4000)
    err = info.value
    assert err.component == "spoil@Spoil" and err.port == "out"
    assert "component spoil@Spoil sent" in str(err)
    assert "over max_item_bytes=4000" in str(err)
