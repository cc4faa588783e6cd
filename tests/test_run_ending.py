"""Workers end like a normal interpreter: what components wrote through ordinary Python objects
(files, multiprocessing queues) is complete when run() returns, persists that are context managers
are exited, and no process a component started outlives the run."""

import multiprocessing
import os
import subprocess
import threading
import uuid

import psutil
import pytest

from cascata import ComponentError, Graph, WorkerLostError, component, inport, persist
from tests.components import Source
from tests.helpers import poll_for


@component
@inport("x")
@persist("f", lambda path: open(path, "w"))  # closed by the runtime when the component ends
async def FileSink(x, f):
    f.get().write(f"{x}\n")


@component
@inport("x")
@inport("q")
async def QueueSink(x, q):
    q.put(x)


def _file_graph(n, path):
    g = Graph()
    g.src = Source
    g.sink = FileSink
    g.src.n < n
    g.sink.f < str(path)
    g.src.out >> g.sink.x
    return g


@pytest.mark.parametrize("n", [1_000, 100_000])
def test_a_file_kept_in_a_persist_is_complete_when_run_returns(tmp_path, n):
    path = tmp_path / "out.txt"
    _file_graph(n, path).run(2)
    lines = path.read_text().splitlines()
    assert len(lines) == n
    assert lines[-1] == str(n - 1)


@component
@inport("x")
@persist("f", lambda path: open(path, "w"))
async def ReopenSink(x, f):
    # drops the file it was given and opens another it never closes: only the interpreter's
    # shutdown work (finalizing unreferenced files, flushing the rest) completes it
    global _KEPT
    if x == 0:
        _KEPT = open(f.get().name + ".kept", "w")  # noqa: ASYNC230 - as users write it
    _KEPT.write(f"{x}\n")


def test_a_file_no_one_closed_is_complete_when_run_returns(tmp_path):
    path = tmp_path / "out.txt"
    g = Graph()
    g.src = Source
    g.sink = ReopenSink
    g.src.n < 5000
    g.sink.f < str(path)
    g.src.out >> g.sink.x
    g.run(2)
    assert len((tmp_path / "out.txt.kept").read_text().splitlines()) == 5000


def test_a_multiprocessing_queue_receives_every_item_put_by_a_component():
    n = 20_000
    queue = multiprocessing.Queue()
    got = []

    def read():
        for _ in range(n):
            got.append(queue.get(timeout=30))

    reader = threading.Thread(target=read)
    reader.start()
    g = Graph()
    g.src = Source
    g.sink = QueueSink
    g.src.n < n
    g.sink.q < queue
    g.src.out >> g.sink.x
    try:
        g.run(2)
    finally:
        reader.join(timeout=40)
    assert got == list(range(n))
    queue.close()
    queue.join_thread()


def test_a_queue_nobody_reads_fails_the_run_saying_to_read_it_while_it_runs():
    queue = multiprocessing.Queue()
    g = Graph()
    g.src = Source
    g.sink = QueueSink
    g.src.n < 50_000  # far more than a pipe holds
    g.sink.q < queue
    g.src.out >> g.sink.x
    with pytest.raises(WorkerLostError, match=r"not taken by anyone .* while the run goes"):
        g.run(2)
    queue.cancel_join_thread()
    queue.close()


class Closing:
    """A context manager recording, in a file, that it was exited."""

    def __init__(self, path, fail=False):
        self.path = path
        self.fail = fail

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        with open(self.path, "a") as f:
            f.write("exited\n")
        if self.fail:
            raise OSError("flush failed")


@component
@inport("x")
@inport("fail", default=False)
@persist("res", lambda path, fail: Closing(path, fail))
async def UsesResource(x, fail, res):
    res.get()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_context_manager_persist_is_exited_when_its_component_ends(tmp_path, workers):
    path = tmp_path / "log"
    g = Graph()
    g.src = Source
    g.use = UsesResource
    g.src.n < 10
    g.use.res < (str(path), False)
    g.src.out >> g.use.x
    g.run(workers)
    assert path.read_text() == "exited\n"


@pytest.mark.parametrize("workers", [1, 2])  # 1: the consumer runs inline in the source's send
def test_an_error_exiting_a_persist_is_that_components_error(tmp_path, workers):
    g = Graph()
    g.src = Source
    g.use = UsesResource
    g.src.n < 10
    g.use.res < (str(tmp_path / "log"), True)
    g.src.out >> g.use.x
    with pytest.raises(ComponentError, match=r"use@UsesResource raised OSError: flush failed"):
        g.run(workers)


@component
@inport("x")
@persist("lst", lambda lst: lst)
async def AppendTo(x, lst):
    lst.get().append(x)


def test_a_context_manager_given_by_the_caller_is_left_to_the_caller(tmp_path):
    with multiprocessing.Manager() as manager:
        results = manager.list()
        g = Graph()
        g.src = Source
        g.sink = AppendTo
        g.src.n < 5
        g.sink.lst < results
        g.src.out >> g.sink.x
        g.run(2)
        g.run(2)  # the manager still serves
        assert list(results) == [0, 1, 2, 3, 4] * 2


# -- processes started by components ----------------------------------------------------------


@component
@inport("x")
@inport("marker")
@inport("fail", default=False)
@inport("own_session", default=False)
async def StartsSleep(x, marker, fail, own_session):
    if x == 0:
        # a shell that starts a sleep and waits: the sleep is a grandchild of the worker
        subprocess.Popen(  # noqa: ASYNC220 - as users write it
            ["sh", "-c", f"sleep {marker}; true"], start_new_session=own_session
        )
        if fail:
            raise RuntimeError("failed after starting a process")


def _sleepers(marker):
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if any(marker in part for part in cmd):
            found.append(p)
    return found


@pytest.mark.parametrize(
    ("fail", "own_session"), [(False, False), (True, False), (False, True), (True, True)]
)
def test_no_process_a_component_started_outlives_the_run(fail, own_session):
    marker = f"1234.{uuid.uuid4().int % 10**6:06d}"
    g = Graph()
    g.src = Source
    g.run_it = StartsSleep
    g.src.n < 3
    g.run_it.marker < marker
    g.run_it.fail < fail
    g.run_it.own_session < own_session
    g.src.out >> g.run_it.x
    try:
        if fail:
            with pytest.raises(ComponentError, match="failed after starting a process"):
                g.run(2)
        else:
            g.run(2)
        # run() returned: nothing the component started may still run
        assert [p.info["cmdline"] for p in _sleepers(marker)] == []
    finally:
        for p in _sleepers(marker):
            p.kill()


def test_processes_started_by_a_killed_worker_are_stopped_with_it():
    marker = f"1234.{uuid.uuid4().int % 10**6:06d}"

    @component
    @inport("x")
    async def StartThenDie(x):
        if x == 0:
            subprocess.Popen(["sh", "-c", f"sleep {marker}; true"])  # noqa: ASYNC220
            poll_for(lambda: _sleepers(marker), timeout=10)
            os.kill(os.getpid(), 9)

    g = Graph()
    g.src = Source
    g.die = StartThenDie
    g.src.n < 3
    g.src.out >> g.die.x
    try:
        with pytest.raises(WorkerLostError, match="SIGKILL"):
            g.run(2)
        assert _sleepers(marker) == []
    finally:
        for p in _sleepers(marker):
            p.kill()


@pytest.mark.parametrize("fail", [False, True])
def test_no_process_a_component_started_on_a_daemons_worker_outlives_the_run(daemons, key_file, fail):
    (d,) = daemons(1)
    marker = f"1234.{uuid.uuid4().int % 10**6:06d}"
    g = Graph()
    g.src = Source
    g.run_it = StartsSleep
    g.src.n < 3
    g.run_it.marker < marker
    g.run_it.fail < fail
    g.src.out >> g.run_it.x
    try:
        if fail:
            with pytest.raises(ComponentError, match="failed after starting a process"):
                g.run(workers=[d.address], key_file=key_file)
        else:
            g.run(workers=[d.address], key_file=key_file)
        # the daemon's workers end as local ones do: what their components started is stopped
        poll_for(lambda: not _sleepers(marker), timeout=5)
    finally:
        for p in _sleepers(marker):
            p.kill()
