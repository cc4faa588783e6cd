"""Components for runs over namespace hosts: each says which network namespace it ran in.

Module level, so a daemon's workers import them by reference (tests.multihost.parts)."""

from __future__ import annotations

import asyncio
import os

from cascata import component, inport, outport


def netns_inode() -> int:
    """The inode of this process's network namespace (Host.netns_inode names a host's)."""
    return os.stat("/proc/self/ns/net").st_ino


@component
@inport("n")
@outport("out")
async def Start(n, out):
    """Sends (i, [where this ran]) for i in 0..n-1."""
    here = netns_inode()
    for i in range(n):
        await out.send((i, [here]))


@component
@inport("x")
@outport("out")
async def Hop(x, out):
    """Adds where this ran to the item's path and passes it on."""
    i, path = x
    await out.send((i, [*path, netns_inode()]))


@component
@inport("x")
@outport("out")
async def SlowHop(x, out):
    """A Hop that takes 10 ms per item, so a run lasts long enough to be broken."""
    await asyncio.sleep(0.01)
    i, path = x
    await out.send((i, [*path, netns_inode()]))


@component
@inport("n")
@inport("size", default=1_000_000)
@outport("out")
async def Arrays(n, size, out):
    """Sends n float64 arrays of ``size`` elements (8 MB by default), array i filled with i."""
    import numpy as np

    for i in range(n):
        await out.send(np.full(size, i, dtype=np.float64))


@component
@inport("a")
@outport("out")
async def Check(a, out):
    """Sends (first element, whether every element equals it, length, where this ran)."""
    await out.send((float(a[0]), bool((a == a[0]).all()), len(a), netns_inode()))
