"""Case 15 of the fault suite: fifty runs in a row in one process (a user script, run as one)
leave no growth in open files, threads, child processes or memory."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

RUNS = 50
WARM_UP = 5
SCRIPT = textwrap.dedent(
    """
    import json, os, threading
    import psutil
    from cascata import Graph, component, inport, outport

    @component
    @inport("n")
    @outport("out")
    async def Numbers(n, out):
        for i in range(n):
            await out.send({{"i": i, "blob": b"x" * (i % 300)}})

    @component
    @inport("x")
    @outport("out")
    async def Twice(x, out):
        await out.send(x["i"] * 2)

    @component
    @inport("x")
    async def Drop(x):
        pass

    me = psutil.Process()
    state = []
    for run in range({runs}):
        g = Graph()
        g.numbers = Numbers
        g.twice = Twice
        g.drop = Drop
        g.numbers.n < 300
        g.numbers.out >> g.twice.x
        g.twice.out >> g.drop.x
        g.run(3)
        state.append({{
            "fds": me.num_fds(),
            "threads": threading.active_count(),
            "os_threads": me.num_threads(),
            "children": len(me.children(recursive=True)),
            "rss": me.memory_info().rss,
        }})
    print(json.dumps(state))
    """
)


@pytest.mark.slow
def test_fifty_runs_in_one_process_leave_no_growth(tmp_path):
    path = tmp_path / "fifty_runs.py"
    path.write_text(SCRIPT.format(runs=RUNS))
    done = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=50, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    state = json.loads(done.stdout)
    warm, last = state[WARM_UP - 1], state[-1]
    assert last["children"] == 0
    assert last["fds"] <= warm["fds"], [s["fds"] for s in state]
    assert last["threads"] <= warm["threads"], [s["threads"] for s in state]
    # an OS thread of a finished run (ZeroMQ's, the supervisor's) may still be exiting when
    # the next line runs: a leak shows as growth that stays, so judge the last runs' least
    settled = min(s["os_threads"] for s in state[-5:])
    assert settled <= warm["os_threads"], [s["os_threads"] for s in state]
    growth = last["rss"] - warm["rss"]
    assert growth < 8 << 20, [s["rss"] >> 20 for s in state]
