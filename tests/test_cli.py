"""The ``cascata`` command: ``run`` and ``dot`` on a graph defined in a script."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from cascata.cli import main

ROOT = pathlib.Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent("""
    from cascata import *

    @component
    @inport('n')
    @outport('out')
    async def Numbers(n, out):
        for i in range(n):
            await out.send(i)

    @component
    @inport('x')
    @outport('out')
    async def Square(x, out):
        await out.send(x * x)

    @component
    @inport('x')
    async def Show(x):
        log.info(f'got {x}')

    g = Graph()
    g.numbers = Numbers
    g.square = Square
    g.show = Show
    numbers.n < 4
    numbers.out >> square.x
    square.out >> show.x
    data = [1, 2, 3]

    if __name__ == '__main__':
        print('the main block ran')
""")


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "pipeline.py"
    path.write_text(SCRIPT)
    return path


def _cascata(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "cascata.cli", *args], capture_output=True, text=True, timeout=50,
        cwd=cwd, env=env,
    )


def test_run_runs_the_graph_of_a_script_and_prints_its_report(script):
    done = _cascata("run", f"{script}:g", "--workers", "2", "--no-progress", cwd=script.parent)
    assert done.returncode == 0, done.stderr
    assert sorted(x for x in done.stderr.splitlines() if "show@Show" in x) == [
        f"INFO - show@Show: got {i}" for i in (0, 1, 4, 9)
    ]
    for name in ("numbers", "square", "show"):
        assert name in done.stdout  # the report's table, one row per component
    assert "the main block ran" not in done.stdout + done.stderr


def test_run_takes_the_only_graph_when_no_name_is_given(script):
    result = CliRunner().invoke(main, ["run", str(script), "-w", "1", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "square" in result.output


def test_a_failing_component_fails_the_command_with_its_error(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text(SCRIPT.replace("await out.send(x * x)", "raise ValueError('no squares')"))
    result = CliRunner().invoke(main, ["run", f"{path}:g", "--no-progress"])
    assert result.exit_code == 1
    assert "square@Square raised ValueError: no squares" in result.output


def test_dot_writes_the_source_or_renders_with_graphviz(script):
    out = script.parent / "graph.dot"
    result = CliRunner().invoke(main, ["dot", f"{script}:g", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "digraph" in out.read_text() and "square" in out.read_text()
    svg = script.parent / "graph.svg"
    result = CliRunner().invoke(main, ["dot", f"{script}:g", "-o", str(svg)])
    if shutil.which("dot"):
        assert result.exit_code == 0, result.output
        assert "<svg" in svg.read_text()
    else:
        assert result.exit_code == 1
        assert "needs the Graphviz 'dot' program" in result.output and not svg.exists()


def test_dot_without_output_prints_the_source(script):
    result = CliRunner().invoke(main, ["dot", f"{script}:g"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("digraph")


@pytest.mark.parametrize("command", ["run", "dot"])
@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("{dir}/nope.py:g", r"no script at '.*nope\.py' \(no such file\)"),
        ("{script}:graph", r"defines no 'graph' at its top level \(graphs it defines: g\)"),
        ("{script}:data", r"'data' in .*pipeline\.py is a list, not a cascata Graph"),
        ("{dir}:g", r"no script at"),
    ],
)
def test_wrong_path_missing_name_or_not_a_graph_fail_naming_it(script, command, ref, message):
    ref = ref.format(dir=script.parent, script=script)
    result = CliRunner().invoke(main, [command, ref])
    assert result.exit_code != 0
    assert re.search(message, result.output), result.output


def test_a_script_that_raises_fails_with_its_traceback(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("import cascata\nraise RuntimeError('cannot build')\n")
    result = CliRunner().invoke(main, ["run", f"{path}:g"])
    assert result.exit_code != 0
    assert "running " in result.output and "raised RuntimeError: cannot build" in result.output


def test_components_of_the_script_are_not_sent_to_hosts_by_run(script):
    # Nothing listens on that port: the check comes before any connection is tried.
    env = dict(os.environ, PYTHONPATH=str(ROOT), CASCATA_WORKERS="127.0.0.1:9,local")
    done = subprocess.run(
        [sys.executable, "-m", "cascata.cli", "run", f"{script}:g", "--no-progress"],
        capture_output=True, text=True, timeout=50, cwd=script.parent, env=env,
    )
    assert done.returncode == 1
    assert "components defined in the script (numbers, square, show)" in done.stderr
    assert "127.0.0.1:9" in done.stderr and "run the script with python" in done.stderr
