"""Runners are called with their arguments bound by name, whatever the parameter order or kind.

Workers bind the arguments that stay the same between firings once, and pass them positionally
where the signature allows it; these runners cover the shapes that take each path, both inline
(one worker) and from a consumer's own loop (a worker per component).
"""

import functools

import pytest

from cascata import Graph, component, inport, outport, persist
from tests.components import Collect, Source, run_collect


@component
@inport("x")
@outport("out")
async def Reorder(out, x):
    await out.send(x + 1)


@component
@inport("x")
@inport("k", default=10)
@outport("out")
async def Three(k, out, x):
    await out.send(x * k)


@component
@inport("x")
@inport("k", default=2)
@outport("out")
@persist("seen", list)
async def Four(x, k, out, seen):
    seen.get().append(x)
    await out.send(x - k)


@component
@inport("x")
@outport("out")
async def KwOnly(*, x, out):
    await out.send(x + 1000)


@component
@inport("x")
@outport("out")
async def VarKw(x, **rest):
    await rest["out"].send(-x)


@component
@inport("x")
@outport("out")
async def WithDefault(x, out, scale=3):
    await out.send(x * scale)


def keywords_only(func):
    """A decorator whose wrapper takes keywords only, and says it has func's signature."""

    @functools.wraps(func)
    async def wrapper(**kwargs):
        await func(**kwargs)

    return wrapper


@component
@inport("x")
@outport("out")
@keywords_only
async def Wrapped(x, out):
    await out.send(x // 3)


@pytest.mark.parametrize("workers", [1, 9])
def test_every_signature_shape_gets_its_arguments_in_place(workers):
    g = Graph()
    g.src = Source
    g.reorder = Reorder
    g.three = Three
    g.four = Four
    g.kwonly = KwOnly
    g.varkw = VarKw
    g.default = WithDefault
    g.wrapped = Wrapped
    g.sink = Collect
    g.src.n < 50
    g.src.out >> g.reorder.x
    g.reorder.out >> g.three.x
    g.three.out >> g.four.x
    g.four.out >> g.kwonly.x
    g.kwonly.out >> g.varkw.x
    g.varkw.out >> g.default.x
    g.default.out >> g.wrapped.x
    g.wrapped.out >> g.sink.x
    got = run_collect(g, num_workers=workers)
    assert got == [-(((i + 1) * 10 - 2) + 1000) for i in range(50)]
