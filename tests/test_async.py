"""Runs from asyncio code and notebooks: run_async, run() inside a running loop, timeout=."""

import asyncio
import builtins
import os
import pickle
import subprocess
import sys
import textwrap
import time

import pytest

import cascata
from cascata import CascataError, Graph, component, inport, outport
from tests.components import Source

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@component
@inport("x")
@outport("out")
async def Slowly(x, out):
    await asyncio.sleep(0.02)
    await out.send(x * 10)


@component
@inport("x")
async def Stuck(x):
    await asyncio.sleep(60)


@component
@inport("x")
async def Hog(x):
    time.sleep(60)  # noqa: ASYNC251 - holds its worker's loop: ABORT cannot be heard


def _slow_pipeline(n):
    g = Graph()
    g.src = Source
    g.slow = Slowly
    g.src.n < n
    g.src.out >> g.slow.x
    return g, g.collect(g.slow.out)


def test_run_async_lets_other_tasks_of_the_loop_run_meanwhile():
    g, items = _slow_pipeline(20)  # about 0.4 s of sleeping in the component

    async def main():
        ticks = 0
        running = True

        async def ticker():
            nonlocal ticks
            while running:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.ensure_future(ticker())
        report = await g.run_async(num_workers=2)
        running = False
        await task
        return ticks, report

    ticks, report = asyncio.run(main())
    assert items == [10 * i for i in range(20)]
    assert report.components["slow"].items_out == 20
    assert ticks >= 20  # a loop blocked by the run would have ticked once or twice


def test_cancelling_run_async_stops_every_worker():
    g = Graph()
    g.src = Source
    g.stuck = Stuck
    g.src.n < 1
    g.src.out >> g.stuck.x

    async def main():
        task = asyncio.ensure_future(g.run_async(num_workers=2))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert g._run is None  # the autouse leak check also finds no worker left


def test_run_inside_a_running_loop_works_and_prints_nothing(tmp_path):
    script = tmp_path / "in_loop.py"
    script.write_text(textwrap.dedent("""
        import asyncio
        from cascata import Graph
        from tests.components import Add, Source

        async def cell():  # what a notebook cell runs: the kernel's loop is running
            g = Graph()
            g.src = Source
            g.add = Add
            g.src.n < 100
            g.src.out >> g.add.x
            items = g.collect(g.add.out)
            g.run(num_workers=2)
            print(sum(items))

        asyncio.run(cell())
    """))
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(sum(range(1, 101)))
    assert out.stderr == ""


@pytest.mark.parametrize("blocker", [Stuck, Hog])
def test_timeout_stops_the_run_within_a_second_naming_what_still_ran(blocker):
    g = Graph()
    g.src = Source
    g.stuck = blocker
    g.src.n < 1
    g.src.out >> g.stuck.x
    started = time.monotonic()
    with pytest.raises(cascata.TimeoutError) as info:
        g.run(num_workers=2, timeout=1.0)
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 2.0
    error = info.value
    assert isinstance(error, CascataError) and isinstance(error, builtins.TimeoutError)
    assert error.running == (f"stuck@{blocker.__name__}",)
    assert "stuck@" in str(error) and "1 s" in str(error)
    again = pickle.loads(pickle.dumps(error))
    assert (type(again), again.running, str(again)) == (type(error), error.running, str(error))


def test_a_run_that_ends_in_time_is_not_affected_by_its_timeout():
    g, items = _slow_pipeline(5)
    g.run(num_workers=2, timeout=30)
    assert items == [0, 10, 20, 30, 40]


@pytest.mark.parametrize("bad", [0, -1, "5", True])
def test_a_timeout_that_is_not_a_positive_number_is_refused_before_starting(bad):
    g, _ = _slow_pipeline(1)
    with pytest.raises(ValueError, match="timeout"):
        g.run(timeout=bad)
