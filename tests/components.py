"""Components shared by the tests, and a helper that runs a graph and returns what it collected.

They are defined at module level, so worker processes and JSON documents find them by module and
class name (module ``tests.components``). A test whose component differs in a way it relies on
(another default, another port, a delay) keeps its own.
"""

from __future__ import annotations

import asyncio
import multiprocessing

from cascata import Graph, component, inport, outport, persist


@component
@inport("n")
@outport("out")
async def Source(n, out):
    """Sends 0, 1, ..., n - 1."""
    for i in range(n):
        await out.send(i)


@component
@inport("n")
@inport("start", default=0)
@inport("delay", default=0)
@outport("out")
async def Count(n, start, delay, out):
    """Sends start, start + 1, ... (n items), after ``delay`` seconds."""
    if delay:
        await asyncio.sleep(delay)
    for i in range(start, start + n):
        await out.send(i)


@component
@inport("x")
@inport("k", default=1)
@outport("out")
async def Add(x, k, out):
    """Sends x + k."""
    await out.send(x + k)


@component
@inport("x", capacity=4)
@outport("out")
async def Double(x, out):
    """Sends 2 * x; its inport holds 4 items, not the default 10."""
    await out.send(x * 2)


@component
@inport("a")
@inport("b")
@outport("out")
@persist("state", lambda start=0, step=1: [start, step])
async def Mix(a, b, out, state):
    """Two inports and a persist taking arguments, for tests of settings; sends (a, b)."""
    await out.send((a, b))


@component
@inport("x")
@outport("out")
async def Pass(x, out):
    """Sends x on unchanged."""
    await out.send(x)


@component
@inport("x")
async def Sink(x):
    """Takes every item and does nothing with it."""


@component
@inport("x")
@persist("sink", lambda lst: lst)
async def Collect(x, sink):
    """Appends x to the list given to its ``sink`` persist (a Manager list across processes)."""
    sink.get().append(x)


def nested_subgraph() -> Graph:
    """inp -> pre (Add, k < 1000) -> inner (a subgraph: ws, a group of 3 Double) -> post (Add) -> out.

    Exports inp (pre.x) and out (post.out); x becomes (x + 1000) * 2 + 1.
    """
    inner = Graph()
    inner.ws = Double * 3
    inner.export(inner.ws.x, "inp")
    inner.export(inner.ws.out, "out")
    mid = Graph()
    mid.pre = Add
    mid.inner = inner
    mid.post = Add
    mid.pre.k < 1000
    mid.pre.out >> mid.inner.inp
    mid.inner.out >> mid.post.x
    mid.export(mid.pre.x, "inp")
    mid.export(mid.post.out, "out")
    return mid


def run_collect(graph: Graph, num_workers: int = 2) -> list:
    """Run ``graph`` with one Manager list behind every component's ``sink`` persist; return the
    items the list gathered, in the order they were appended."""
    with multiprocessing.Manager() as manager:
        results = manager.list()
        for comp in graph.nodes.values():
            if "sink" in comp._ports:
                comp.sink < results
        graph.run(num_workers=num_workers)
        return list(results)
