"""Case 9 of the fault suite: a consumer that stops for a while, behind a chain, a fan-in, a
fan-out and a group, with a given capacity: items sent and not yet taken never exceed it (SPEC 5:
plus one per publisher being handed over), and the memory of the run stays flat.

tests/test_capacity.py holds the bound on one edge for every path and item size; here it holds
across topologies. Counters live in shared memory the forked workers inherit: producers count
completed sends, consumers count items their runner took, and record how far ahead their
publishers got.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time

import psutil
import pytest

from cascata import Graph, component, inport, outport

from .ledger import payload

CAP = 4
N = 60
PAUSE = 0.6  # seconds the consumer stops at its first item
SLOTS = 16
SENT, TAKEN, MOST = 0, SLOTS, 2 * SLOTS  # offsets in the shared counters
MIB = 1 << 20


@component
@inport("n")
@inport("slot")
@inport("counts")
@inport("kind", default="int")
@outport("out")
async def Produce(n, slot, counts, kind, out):
    for seq in range(n):
        await out.send((f"p{slot}", seq, payload(kind, seq)))
        counts[SENT + slot] += 1


def _took(counts, slot, ahead_of) -> int:
    """Count an item taken by ``slot``, and measure."""
    taken = counts[TAKEN + slot] = counts[TAKEN + slot] + 1
    _measure(counts, slot, ahead_of)
    return taken


def _measure(counts, slot, ahead_of) -> None:
    """Record how far the publishers of ``slot`` are ahead of it (and of its group peers)."""
    producers, consumers = ahead_of
    ahead = sum(counts[SENT + p] for p in producers) - sum(counts[TAKEN + c] for c in consumers)
    counts[MOST + slot] = max(counts[MOST + slot], ahead)


@component
@inport("x")
@inport("slot")
@inport("counts")
@inport("ahead_of")
@outport("out")
async def Relay(x, slot, counts, ahead_of, out):
    """Takes an item and passes it on: a consumer of one hop, a producer of the next."""
    _took(counts, slot, ahead_of)
    await out.send(x)
    counts[SENT + slot] += 1


@component
@inport("x")
@inport("slot")
@inport("counts")
@inport("ahead_of")  # (producer slots feeding this port, consumer slots sharing them)
@inport("pause", default=PAUSE)
@inport("every", default=0.0)
async def Consume(x, slot, counts, ahead_of, pause, every):
    """Stops ``pause`` seconds at its first item (and ``every`` seconds at each)."""
    if _took(counts, slot, ahead_of) == 1 and pause:
        await asyncio.sleep(pause)
        _measure(counts, slot, ahead_of)  # at the end of the stop: the peak
    if every:
        await asyncio.sleep(every)


def _counts():
    return multiprocessing.RawArray("q", 3 * SLOTS)


def _consumer(g, name, slot, counts, ahead_of, pause=PAUSE):
    setattr(g, name, Consume)
    c = getattr(g, name)
    c.x.capacity = CAP
    c.slot < slot
    c.counts < counts
    c.ahead_of < ahead_of
    c.pause < pause
    return c


def _producer(g, name, slot, counts, kind):
    setattr(g, name, Produce)
    p = getattr(g, name)
    p.n < N
    p.slot < slot
    p.counts < counts
    p.kind < kind
    return p


def chain(counts, kind):
    """p0 -> relay (slot 1, capacity CAP) -> slow consumer: both hops bounded."""
    g = Graph()
    p = _producer(g, "p0", 0, counts, kind)
    g.relay = Relay
    g.relay.x.capacity = CAP
    g.relay.slot < 1
    g.relay.counts < counts
    g.relay.ahead_of < ((0,), (1,))
    c = _consumer(g, "slow", 2, counts, ((1,), (2,)))
    p.out >> g.relay.x
    g.relay.out >> c.x
    return g


def fan_in(counts, kind):
    """p0, p1, p2 -> one slow consumer: CAP shared by three publishers."""
    g = Graph()
    c = _consumer(g, "slow", 3, counts, ((0, 1, 2), (3,)))
    for slot in range(3):
        _producer(g, f"p{slot}", slot, counts, kind).out >> c.x
    return g


def fan_out(counts, kind):
    """p0 -> a slow consumer and a fast one: the slow one holds the producer back."""
    g = Graph()
    p = _producer(g, "p0", 0, counts, kind)
    slow = _consumer(g, "slow", 1, counts, ((0,), (1,)))
    fast = _consumer(g, "fast", 2, counts, ((0,), (2,)), pause=0)
    p.out >> slow.x
    p.out >> fast.x
    return g


def group(counts, kind):
    """p0 -> a group of three slow members, each with capacity CAP."""
    g = Graph()
    p = _producer(g, "p0", 0, counts, kind)
    g.ws = Consume * 3
    g.ws.x.capacity = CAP
    g.ws.counts < counts
    g.ws.ahead_of < ((0,), (1, 2, 3))
    g.ws.pause < PAUSE
    for i in range(3):
        getattr(g, f"ws_{i}").slot < 1 + i
    p.out >> g.ws.x
    return g


BOUNDS = {
    # measuring slot -> most items its publishers may be ahead of it (SPEC 5: the capacity,
    # plus one per publisher being handed over)
    "chain": {2: CAP + 1, 1: CAP + 1},
    "fan_in": {3: CAP + 3},
    "fan_out": {1: CAP + 1},
    "group": {1: 3 * CAP + 1, 2: 3 * CAP + 1, 3: 3 * CAP + 1},
}
TOPOLOGIES = {"chain": chain, "fan_in": fan_in, "fan_out": fan_out, "group": group}


@pytest.mark.parametrize("kind", ["int", "bytes"])
@pytest.mark.parametrize("topology", list(TOPOLOGIES))
def test_items_ahead_of_a_stopped_consumer_never_exceed_the_given_capacity(topology, kind):
    counts = _counts()
    g = TOPOLOGIES[topology](counts, kind)
    workers = len(g.nodes)  # every component in its own worker: every edge crosses processes
    g.run(workers)
    for slot, most in BOUNDS[topology].items():
        ahead = counts[MOST + slot]
        assert ahead <= most, f"{topology}/{kind}: {ahead} items ahead of slot {slot}, over {most}"
    peak = max(counts[MOST + slot] for slot in BOUNDS[topology])
    # and the stop did let them run ahead (credit returns after half a window, so a producer
    # may stop short of the bound by that much)
    assert peak >= CAP // 2, f"{topology}/{kind}: only {peak} ahead: the stop did not fill it"


ARRAY_ITEMS = 200  # of 1 MiB each, through a chain whose bound holds a handful per hop
MEMORY_CEILING = 96 * MIB  # the workers' growth over the run: well under the 200 MiB sent
PLATEAU_SLACK = 32 * MIB  # allocator arenas still settle in the second half


@pytest.mark.slow
def test_memory_stays_flat_while_a_slow_consumer_holds_back_a_stream_of_large_items():
    counts = _counts()
    g = Graph()
    p = _producer(g, "p0", 0, counts, "mib")
    p.n < ARRAY_ITEMS
    g.relay = Relay
    g.relay.x.capacity = CAP
    g.relay.slot < 1
    g.relay.counts < counts
    g.relay.ahead_of < ((0,), (1,))
    c = _consumer(g, "slow", 2, counts, ((1,), (2,)), pause=0)
    c.every < 0.005
    p.out >> g.relay.x
    g.relay.out >> c.x
    g.start(3)
    try:
        workers = psutil.Process().children()
        samples = []
        while counts[TAKEN + 2] < ARRAY_ITEMS - 5:
            samples.append(sum(_rss(w) for w in workers))
            time.sleep(0.02)
    finally:
        g.join()
    assert len(samples) > 20
    # Memory rises to a working set (items in flight, allocator arenas), then stays there;
    # without a bound it would grow with what the producer sent, all of it at once.
    growth = max(samples) - samples[0]
    half = len(samples) // 2
    later = max(samples[half:]) - max(samples[:half])
    mib = [round(x / MIB) for x in samples]
    assert growth < MEMORY_CEILING, f"workers grew by {growth / MIB:.0f} MiB: {mib}"
    assert later < PLATEAU_SLACK, f"workers still grew by {later / MIB:.0f} MiB late in the run: {mib}"


def _rss(proc: psutil.Process) -> int:
    try:
        return proc.memory_info().rss
    except psutil.NoSuchProcess:
        return 0
