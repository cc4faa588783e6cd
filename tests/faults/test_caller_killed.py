"""Case 8 of the fault suite (local workers): the process that called run() is killed with
SIGKILL mid-run; its workers notice and exit by themselves within seconds, removing the run's
socket directory. (This test process is a subreaper, so the orphaned workers are its children.)"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import tempfile

import psutil

from tests.helpers import poll_for

from .scripts import write_script
from .tools import deadline, wait_flag

SCRIPT = """
    @component
    @inport("x")
    @outport("out")
    async def Pass(x, out):
        await out.send(x)

    g = Graph()
    g.numbers = Numbers
    g.relay = Pass
    g.mark = Mark
    numbers.n < 10**7
    numbers.out >> relay.x
    relay.out >> mark.x
    g.run(3)
"""


def test_workers_exit_by_themselves_when_the_caller_is_killed(flags):
    path = write_script(flags, SCRIPT)
    proc = subprocess.Popen([sys.executable, path, flags], stderr=subprocess.PIPE, text=True)
    try:
        wait_flag(flags, timeout=30)
        workers = psutil.Process(proc.pid).children()
        assert len(workers) == 3
        with deadline("8: caller killed (local workers exit)"):
            proc.kill()
            proc.wait()
            poll_for(lambda: not any(_alive(w) for w in workers), timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    run_dirs = os.path.join(tempfile.gettempdir(), f"cascata-run-{proc.pid}-*")
    poll_for(lambda: not glob.glob(run_dirs), timeout=2)


def _alive(proc: psutil.Process) -> bool:
    try:
        if proc.status() == psutil.STATUS_ZOMBIE:
            os.waitpid(proc.pid, os.WNOHANG)  # adopted by this process (a subreaper): reap it
            return False
        return True
    except (psutil.NoSuchProcess, ChildProcessError):
        return False
