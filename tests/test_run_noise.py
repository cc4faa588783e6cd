"""One error, no noise: a failed or stopped run shows the caller its one exception, and stderr
holds nothing else (no asyncio 'exception was never retrieved', no CancelledError)."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROLOGUE = textwrap.dedent(
    """
    import os, signal, sys, time
    from cascata import *

    @component
    @inport('n')
    @outport('out')
    async def Src(n, out):
        for i in range(n):
            await out.send(i)

    @component
    @inport('x')
    @inport('how', default='raise')
    @outport('out')
    async def Mid(x, how, out):
        if x == 50:
            if how == 'raise':
                raise ValueError('boom at 50')
            if how == 'kill':
                os.kill(os.getpid(), signal.SIGKILL)
            if how == 'announce':
                print('RUNNING', flush=True)
        await out.send(x)

    @component
    @inport('x')
    async def Sink(x):
        pass

    def pipeline(how, n=200000):
        g = Graph()
        g.src = Src
        g.mid = Mid
        g.sink = Sink
        g.src.n < n
        g.mid.how < how
        g.src.out >> g.mid.x
        g.mid.out >> g.sink.x
        return g
    """
)

CASES = {
    "caught component error": (
        """
        try:
            pipeline('raise').run(WORKERS)
        except ComponentError as exc:
            print('caught', exc.component)
        """,
        None,
    ),
    "uncaught component error": ("pipeline('raise').run(WORKERS)", "ValueError: boom at 50"),
    "lost worker": ("pipeline('kill').run(WORKERS)", "WorkerLostError"),
    "runtime deadlock": (
        """
        @component
        @inport('a')
        @inport('b')
        async def Pair(a, b):
            pass

        @component
        @inport('x')
        @outport('out')
        async def Hoard(x, out):
            for item in x:
                await out.send(item)

        g = Graph()
        g.src = Src
        g.hoard = Hoard
        g.pair = Pair
        g.src.n < 10000  # more than the capacity and the small-item slack of a connection
        g.src.out >> g.pair.a
        g.src.out >>= g.hoard.x
        g.hoard.out >> g.pair.b
        g.run(WORKERS)
        """,
        "DeadlockError",
    ),
}

NOISE = ("never retrieved", "CancelledError", "Exception ignored", "was destroyed but it is pending")


def _run_script(tmp_path, body, workers):
    script = tmp_path / "script.py"
    script.write_text(PROLOGUE + textwrap.dedent(body).replace("WORKERS", str(workers)))
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env, cwd=str(tmp_path),
    )


def _assert_one_error(err, expected):
    for noise in NOISE:
        assert noise not in err, f"noise {noise!r} on stderr:\n{err}"
    if expected is None:
        assert err == "", err
        return
    assert expected in err
    # the caller's traceback once (a ComponentError adds the worker's own, once)
    tracebacks = err.count("Traceback (most recent call last)")
    assert tracebacks == (2 if "ValueError" in expected else 1), err


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_failed_run_prints_its_one_error_and_no_noise(tmp_path, case, workers):
    body, expected = CASES[case]
    proc = _run_script(tmp_path, body, workers)
    try:
        out, err = proc.communicate(timeout=45)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    if expected is None:
        assert proc.returncode == 0, err
        assert out.startswith("caught mid@Mid")
    else:
        assert proc.returncode != 0
    _assert_one_error(err, expected)


@pytest.mark.parametrize("workers", [1, 3])
def test_ctrl_c_prints_keyboard_interrupt_and_no_noise(tmp_path, workers):
    proc = _run_script(tmp_path, "pipeline('announce', n=10**9).run(WORKERS)", workers)
    try:
        assert proc.stdout.readline().startswith("RUNNING")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0
    assert err.rstrip().endswith("KeyboardInterrupt")
    _assert_one_error(err, "KeyboardInterrupt")
