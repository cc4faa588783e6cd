"""The live progress view, drawn into a real pseudo-terminal, and the observer seam under it."""

import os
import pty
import re
import subprocess
import sys
import textwrap
import threading

import pytest

from cascata import ComponentError, Graph, component, inport
from cascata._run.compile import compile_plan
from cascata._run.coordinator import Coordinator
from cascata._run.events import Failed, Finished, LogLine, Observers, Started, Stats
from tests.components import Add, Sink, Source

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

SCRIPT = textwrap.dedent("""
    import asyncio
    from cascata import Graph, component, inport, outport, log
    from tests.components import Sink, Source

    @component
    @inport("x")
    @outport("out")
    async def Slowly(x, out):
        await asyncio.sleep(0.002)
        if x == 100:
            log.info("halfway there")
        await out.send(x)

    g = Graph()
    g.src = Source
    g.slowly = Slowly
    g.sink = Sink
    g.src.n < 200
    g.src.out >> g.slowly.x
    g.slowly.out >> g.sink.x
    g.run(num_workers=3)  # progress defaults to on: stderr is a terminal
    print("returned")
""")


def _run_in_pty(tmp_path, source=SCRIPT):
    script = tmp_path / "progress.py"
    script.write_text(source)
    master, slave = pty.openpty()
    env = dict(os.environ, PYTHONPATH=ROOT, COLUMNS="100", LINES="40", TERM="xterm")
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=slave, env=env, text=True
    )
    os.close(slave)
    chunks = []

    def read():
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # the terminal closed: the child and its workers exited
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        stdout, _ = proc.communicate(timeout=50)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=5)
    os.close(master)
    return proc.returncode, stdout, b"".join(chunks).decode(errors="replace")


def test_progress_in_a_terminal_shows_components_and_final_counts_and_log_lines(tmp_path):
    code, stdout, terminal = _run_in_pty(tmp_path)
    assert code == 0, terminal
    assert stdout.strip() == "returned"
    text = ANSI.sub("", terminal)
    for label in ("src@Source", "slowly@Slowly", "sink@Sink"):
        assert label in text
    assert "done in" in text  # the final summary
    final = text[text.rindex("done in"):]
    assert re.search(r"slowly@Slowly\s+\d+\s+200\b", final), final
    assert re.search(r"sink@Sink\s+\d+\s+200\b", final), final
    assert "<- slowest" in final
    assert "INFO - slowly@Slowly: halfway there" in text  # a whole line, above the table


def test_progress_is_off_when_stderr_is_not_a_terminal(capfd):
    g = Graph()
    g.src = Source
    g.sink = Sink
    g.src.n < 10
    g.src.out >> g.sink.x
    g.run(num_workers=2)
    assert capfd.readouterr().err == ""


def test_observers_hear_started_stats_log_lines_and_finished_in_order():
    events = []
    g = Graph()
    g.src = Source
    g.add = Add
    g.src.n < 50_000
    g.src.out >> g.add.x
    plan = compile_plan(g, 2)
    coordinator = Coordinator(plan, observers=Observers([events.append]))
    coordinator.start()
    report = coordinator.join()
    kinds = [type(e) for e in events]
    assert kinds[0] is Started and kinds[-1] is Finished
    assert events[-1].report is report
    assert Stats in kinds and Failed not in kinds and LogLine not in kinds
    assert events[0].labels == ("src@Source", "add@Add")



@component
@inport("x")
async def Refuses(x):
    raise ValueError("no")


def test_observers_hear_failed_with_the_error_the_run_raises():
    events = []
    g = Graph()
    g.src = Source
    g.bad = Refuses
    g.src.n < 3
    g.src.out >> g.bad.x
    coordinator = Coordinator(compile_plan(g, 2), observers=Observers([events.append]))
    coordinator.start()
    with pytest.raises(ComponentError) as info:
        coordinator.join()
    assert type(events[-1]) is Failed and "Refuses" in str(events[-1].error)
    assert type(info.value) is type(events[-1].error)
    assert Finished not in [type(e) for e in events]
