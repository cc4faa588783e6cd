"""Case 15 of the fault suite: fifty runs in a row in one process (a user script, run as one),
and fifty plans in a row on one daemon, leave no growth in open files, threads, child processes
or memory."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import psutil
import pytest

from tests.helpers import poll_for

from .graphs import chain
from .ledger import check

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

# Runs whose figures are compared: the first ones after the warm-up against the last ones.
COMPARED = 5


def assert_flat(state: list[dict[str, int]], warm_up: int, rss_slack: int, who: str) -> None:
    """No growth that stays. One sample may catch a thread or an fd on its way out (an OS thread
    of a finished run still exiting), or miss one that is about to come back, so no single
    sample is judged: for each figure, the least of the last runs must not exceed the most of
    the first runs after the warm-up (RSS by more than ``rss_slack`` bytes)."""
    first, last = state[warm_up : warm_up + COMPARED], state[-COMPARED:]
    for key in state[0]:
        growth = min(s[key] for s in last) - max(s[key] for s in first)
        assert growth <= (rss_slack if key == "rss" else 0), (who, key, [s[key] for s in state])


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
    assert state[-1]["children"] == 0
    assert_flat(state, WARM_UP, 8 << 20, "this process")


# Plans on one daemon: its fork server forks each plan's worker (a tenth of a second, where a
# fresh interpreter took one or two), so fifty fit in CI's budget too.
PLANS = 50
PLANS_WARM_UP = 5
# Bytes of RSS the daemon or its fork server may gain over the plans (allocator noise; a leak of
# a plan's payload or of a session would add far more than this over 45 plans).
RSS_SLACK = 4 << 20


def _sample(proc: psutil.Process) -> dict[str, int]:
    return {
        "fds": proc.num_fds(),
        "threads": proc.num_threads(),
        "children": len(proc.children(recursive=True)),
        "rss": proc.memory_info().rss,
    }


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_fifty_plans_on_one_daemon_leave_no_growth(daemons, key_file, ledger):
    (d,) = daemons(1, processes=1)
    daemon = psutil.Process(d.pid)
    server = d.fork_server()
    assert server is not None
    state = []
    for i in range(PLANS):
        g = chain(ledger, 20)
        g.sink.tag < f"plan-{i}"
        g.run(workers=[d.address], key_file=key_file)
        poll_for(lambda: not d.workers(), timeout=10)
        state.append({"daemon": _sample(daemon), "server": _sample(server)})
    check(ledger, {"p": 20}, copies=PLANS)
    assert d.fork_server().pid == server.pid  # the same fork server served every plan
    for who in ("daemon", "server"):
        assert_flat([s[who] for s in state], PLANS_WARM_UP, RSS_SLACK, who)
    assert state[-1]["server"]["children"] == 0
