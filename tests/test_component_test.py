"""``Component.test(**inports)``: one firing, in-process, returning every outport's items."""

import asyncio

import pytest

from cascata import component, inport, log, outport, persist
from tests.components import Collect


@component
@inport("data_in", capacity=10)
@inport("k", default=1)
@outport("data_out")
@persist("count", lambda: 0)
async def Add(data_in, k, data_out, count):
    count.set(count.get() + 1)
    await data_out.send(data_in + k)


@component
@inport("n")
@outport("evens")
@outport("odds")
@outport("unused")
async def Split(n, evens, odds, unused):
    for i in range(n):
        await (evens if i % 2 == 0 else odds).send(i)


@component
@outport("out")
@persist("seen", lambda: [])
async def Source(out, seen):
    seen.get().append("fired")
    await out.send(len(seen.get()))


@component
@inport("x")
@outport("out")
async def Sleeper(x, out):
    await asyncio.sleep(0)
    await out.send(x * 2)


@component
@inport("x")
async def Fails(x):
    raise ValueError(f"bad {x}")


def test_returns_sent_items_per_outport():
    assert Add.test(data_in=1, k=2) == {"data_out": [3]}


def test_uses_the_declared_default():
    assert Add.test(data_in=1) == {"data_out": [2]}


def test_every_outport_is_listed_even_when_nothing_was_sent():
    assert Split.test(n=5) == {"evens": [0, 2, 4], "odds": [1, 3], "unused": []}


def test_persist_values_start_from_their_factory_each_call():
    assert Source.test() == {"out": [1]}
    assert Source.test() == {"out": [1]}  # a fresh value per call: no state leaks between calls


def test_persist_value_can_be_passed_by_name():
    box = []
    assert Collect.test(x=5, sink=box) == {}
    assert box == [5]


def test_persist_factory_needing_arguments_says_to_pass_a_value():
    with pytest.raises(TypeError, match=r"persist 'sink' .* Collect.test\(sink=...\)"):
        Collect.test(x=5)


def test_missing_inport_value_raises_type_error_naming_it():
    with pytest.raises(TypeError, match="missing a value for inport 'data_in'"):
        Add.test(k=2)


@component
@inport("a")
@inport("b")
@inport("c", default=0)
@outport("out")
async def Three(a, b, c, out):
    await out.send(a + b + c)


def test_several_missing_inports_are_all_named():
    with pytest.raises(TypeError, match=r"inport 'a', 'b': .* Three.test\(a=...\)"):
        Three.test()


def test_unknown_name_raises_type_error_listing_the_ports():
    with pytest.raises(TypeError, match=r"\['nope'\].*inports: \['data_in', 'k'\]"):
        Add.test(data_in=1, nope=3)


def test_awaits_inside_the_runner_work():
    assert Sleeper.test(x=4) == {"out": [8]}


def test_exceptions_from_the_runner_propagate():
    with pytest.raises(ValueError, match="bad 3"):
        Fails.test(x=3)


def test_works_inside_a_running_event_loop():
    async def inside():
        return Add.test(data_in=10)

    assert asyncio.run(inside()) == {"data_out": [11]}


@component
@inport("x")
async def Logs(x):
    log.info(f"got {x}")


def test_log_lines_name_the_tested_class(capfd):
    Logs.test(x=9)
    assert "INFO - test@Logs: got 9" in capfd.readouterr().err
