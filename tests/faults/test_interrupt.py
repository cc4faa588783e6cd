"""Case 14 of the fault suite: a real Ctrl-C (SIGINT to the whole process group, as a terminal
sends it) to a user script during run(), and a second one while the run is being stopped:
everything stops, the user sees one KeyboardInterrupt and nothing else, nothing is left."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from .scripts import write_script
from .tools import deadline, wait_flag

SCRIPT = """
    BLOCK = float(sys.argv[2])

    @component
    @inport("x")
    async def Slow(x):
        if x == 50:
            flag()
            time.sleep(BLOCK)  # blocks this worker: it cannot act on the stop message

    g = Graph()
    g.numbers = Numbers
    g.slow = Slow
    numbers.n < 10**7
    numbers.out >> slow.x
    g.run(2)
"""


def _run_script(flags: str, block: float) -> subprocess.Popen:
    path = write_script(flags, SCRIPT)
    return subprocess.Popen(
        [sys.executable, path, flags, str(block)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, like a job in a terminal
    )


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_during_run_stops_everything_with_one_clean_message(presses, flags):
    block = 0.0 if presses == 1 else 3.0
    proc = _run_script(flags, block)
    try:
        worker = wait_flag(flags, timeout=30)
        with deadline(f"14: Ctrl-C x{presses} to a user script during run()"):
            os.killpg(proc.pid, signal.SIGINT)
            if presses == 2:
                time.sleep(0.3)  # the run is being stopped: the blocked worker holds it up
                os.killpg(proc.pid, signal.SIGINT)
            out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode in (-signal.SIGINT, 130, 1), err
    assert err.count("KeyboardInterrupt") == 1, err
    assert err.count("Traceback") == 1, err
    assert err.rstrip().endswith("KeyboardInterrupt"), err
    for noise in ("Exception ignored", "never retrieved", "Error", "Warning"):
        assert noise not in err, err
    assert not os.path.exists(f"/proc/{worker}") or _zombie(worker)
    assert not glob.glob(os.path.join(tempfile.gettempdir(), f"cascata-run-{proc.pid}-*"))


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
