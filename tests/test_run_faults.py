"""Fail fast, never hang: every fault makes run() raise a clear error and stops every worker."""

import os
import pickle
import signal

import pytest

from cascata import (
    ComponentError,
    Graph,
    ItemTooLargeError,
    SerializationError,
    WorkerLostError,
    component,
    inport,
    outport,
)
from cascata.errors import DeadlockError
from cascata.worker.ports import SMALL_ITEM_SLACK
from tests.components import Count, Pass, Sink


@component
@inport("x")
@outport("out")
async def Explode(x, out):
    if x == 3:
        raise ValueError(f"bad item {x}")
    await out.send(x)


@component
@inport("x")
@inport("when", default=5)
@inport("how", default="kill")
async def Die(x, when, how):
    if x == when:
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        else:
            os._exit(3)


def _pipeline(n, middle=None, source=Count):
    """src (``source``, n < ``n``) -> mid (``middle``; left out when None) -> sink."""
    g = Graph()
    g.src = source
    g.src.n < n
    end = g.src.out
    if middle is not None:
        g.mid = middle
        end >> g.mid.x
        end = g.mid.out
    g.sink = Sink
    end >> g.sink.x
    return g


def test_exception_in_component_raises_component_error_with_original_traceback():
    g = _pipeline(10, Explode)
    with pytest.raises(ComponentError, match=r"mid@Explode raised ValueError: bad item 3") as info:
        g.run(2)
    err = info.value
    assert "worker-" in err.worker and "pid" in err.worker
    assert 'raise ValueError(f"bad item {x}")' in err.traceback
    assert "test_run_faults.py" in err.traceback


@pytest.mark.parametrize(
    ("how", "cause"), [("kill", r"killed by signal 9 \(SIGKILL\)"), ("exit", "exited with code 3")]
)
def test_worker_dying_mid_stream_raises_worker_lost_naming_pid_signal_and_components(how, cause):
    g = Graph()
    g.src = Count
    g.die = Die
    g.src.n < 1000
    g.die.how < how
    g.src.out >> g.die.x
    with pytest.raises(WorkerLostError, match=cause) as info:
        g.run(2)
    err = info.value
    assert err.pid and f"pid {err.pid}" in str(err)
    assert "die@Die" in str(err)


@component
@inport("n")
@outport("out")
async def SendGenerator(n, out):
    await out.send(i for i in range(n))


def test_unserializable_item_raises_serialization_error_naming_component_port_and_type():
    g = _pipeline(3, source=SendGenerator)
    pattern = r"src@SendGenerator sent an item of type generator on port 'out'"
    with pytest.raises(SerializationError, match=pattern):
        g.run(2)


@component
@inport("n")
@outport("out")
async def Blob(n, out):
    await out.send(b"x" * n)


def test_item_over_size_limit_raises_naming_limit():
    g = _pipeline(5000, source=Blob)
    with pytest.raises(ItemTooLargeError, match=r"5\d{3} bytes, over max_item_bytes=1000"):
        g.run(2, max_item_bytes=1000)


@component
@inport("x")
@outport("out")
async def Hoard(x, out):
    # receives all items as one list (batch), so it sends nothing until its input ends
    for item in x:
        await out.send(item)


@component
@inport("p")
@inport("q")
async def Pair(p, q):
    pass


def test_runtime_deadlock_is_reported_naming_who_waits_on_what():
    g = Graph()
    g.src = Count
    g.hoard = Hoard
    g.pair = Pair
    g.src.n < 2 * SMALL_ITEM_SLACK  # more than capacity plus the small-item slack of a link
    g.src.out >> g.pair.p
    g.src.out >>= g.hoard.x
    g.hoard.out >> g.pair.q
    with pytest.raises(DeadlockError, match=r"src@Count is blocked sending into pair\.p") as info:
        g.run(2)
    assert any("pair@Pair waits for input on 'pair.q'" in i for i in info.value.issues)


@pytest.mark.parametrize("workers", [1, 3])
def test_runtime_deadlock_names_the_inline_consumer_really_blocked_once_with_the_usual_fix(workers):
    # With one worker m and m2 run inline inside src's send: the task that waits is src's,
    # but the component blocked sending into the full j.p is m2.
    g = Graph()
    g.src = Count
    g.m = Pass
    g.m2 = Pass
    g.hoard = Hoard
    g.j = Pair
    g.src.n < 4 * SMALL_ITEM_SLACK  # more than every buffer and link slack on the way to j.p
    g.src.out >> g.m.x
    g.m.out >> g.m2.x
    g.m2.out >> g.j.p
    g.src.out >>= g.hoard.x
    g.hoard.out >> g.j.q
    with pytest.raises(DeadlockError) as info:
        g.run(workers)
    issues = info.value.issues
    assert issues.count("Runtime deadlock: m2@Pass is blocked sending into j.p (full)") == 1
    assert "Runtime deadlock: j@Pair waits for input on 'j.q'" in issues
    assert not [i for i in issues if "src@Count is blocked" in i]
    assert len(issues) == len(set(issues))
    last = str(info.value).splitlines()[-1]
    assert last.startswith("Usual fix: j waits on j.q while j.p is full") and "g.j.p.capacity = N" in last


def test_errors_survive_pickling():
    errors = [
        ComponentError("a@A", "worker-0", "ValueError", "boom", "tb"),
        WorkerLostError("worker-1", 42, "killed by signal 9", ["a@A"]),
        DeadlockError(["x", "y"]),
    ]
    for err in errors:
        again = pickle.loads(pickle.dumps(err))
        assert type(again) is type(err) and str(again) == str(err)


@component
@inport("n")
@outport("out")
async def Swallow(n, out):
    for i in range(n):
        try:
            await out.send(i)
        except Exception:  # a user catching everything around send must not hide a failure
            pass


def test_failure_of_an_inline_consumer_is_attributed_to_it_and_not_swallowed():
    g = Graph()
    g.src = Swallow
    g.mid = Explode
    g.src.n < 10
    g.src.out >> g.mid.x
    with pytest.raises(ComponentError, match=r"mid@Explode raised ValueError: bad item 3"):
        g.run(1)


@component
@inport("n")
@outport("out")
async def Slow(n, out):
    import asyncio

    for i in range(n):
        await out.send(i)
        await asyncio.sleep(0.01)


def test_malformed_frame_from_a_raw_peer_fails_the_run_with_protocol_error():
    import zmq

    from cascata.errors import ProtocolError

    g = _pipeline(1000, source=Slow)
    g.start(2)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    try:
        endpoint = f"ipc://{g._run._run_dir}/d1"
        sock.connect(endpoint)
        sock.send_multipart([b"\xc1 not msgpack", b"junk"])
        with pytest.raises(ProtocolError, match="malformed frame: header is not valid msgpack"):
            g.join()
    finally:
        sock.close(linger=0)
        ctx.term()
