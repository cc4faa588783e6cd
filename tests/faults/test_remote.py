"""The fault suite on cascata worker daemons (real daemons on loopback, CurveZMQ, real kills):
cases 1, 4 and 5 for remote workers, 13 (addresses) and 14 (Ctrl-C with remote workers).

tests/test_run_hosts.py and tests/worker/test_daemon.py hold the daemon's own faults (host
killed or silent, caller killed, wrong key, garbage and replayed plans), test_repeat.py fifty
plans in a row; these add the faults of the workers a daemon hosts, and of what the caller
gives it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from cascata import CascataError, ComponentError, WorkerLostError
from tests.daemons import ROOT
from tests.helpers import poll_for

from .graphs import ENDLESS, chain, started
from .ledger import Fault, check, write_flag
from .scripts import write_script
from .tools import deadline, wait_flag

pytestmark = pytest.mark.slow

CLASSES = {"src": "LedgerSource", "mid": "LedgerStage", "sink": "LedgerSink"}


def _hosts(daemons, n_processes=3):
    (d,) = daemons(1, processes=n_processes)
    return d, {"workers": [d.address]}


@pytest.mark.parametrize("role", list(CLASSES))
def test_component_raising_on_a_daemon_names_it_and_the_host(role, daemons, key_file, ledger, flags):
    d, where = _hosts(daemons)
    g = chain(ledger, 200, faults={role: Fault(at=100, how="raise", flag_dir=flags)})
    with deadline(f"1 remote: {role} raises on a daemon") as t, pytest.raises(ComponentError) as info:
        try:
            g.run(key_file=key_file, **where)
        finally:
            t.since_flag(flags)
    err = info.value
    assert err.component == f"{role}@{CLASSES[role]}"
    assert d.address in err.worker and "ledger.py" in err.traceback
    poll_for(lambda: not d.workers())


@pytest.mark.parametrize(
    ("role", "sig"),
    [("src", signal.SIGKILL), ("mid", signal.SIGSEGV), ("sink", signal.SIGTERM)],
    ids=lambda v: getattr(v, "name", v),
)
def test_remote_worker_killed_mid_stream_is_worker_lost_naming_host_pid_signal(
    role, sig, daemons, key_file, ledger, flags
):
    d, where = _hosts(daemons)
    g = chain(ledger, ENDLESS, delay=0.001, faults={role: Fault(at=50, flag_dir=flags)})
    with started(g, None, key_file=key_file, **where):
        pid = wait_flag(flags)
        with deadline(f"4 remote: {sig.name} of the remote worker hosting {role}"), pytest.raises(
            WorkerLostError
        ) as info:
            os.kill(pid, sig)
            g.join()
    err = info.value
    assert err.pid == pid and d.address in err.worker
    assert f"signal {int(sig)} ({sig.name})" in err.cause
    assert f"{role}@{CLASSES[role]}" in err.components
    poll_for(lambda: not d.workers())
    if sig == signal.SIGKILL:
        _serves_again(d, key_file, ledger)


def _serves_again(d, key_file, ledger):
    for path in os.listdir(ledger):
        os.remove(os.path.join(ledger, path))
    g = chain(ledger, 50)
    g.run(workers=[d.address], key_file=key_file)
    check(ledger, {"p": 50})


class StallsWhenLoaded:
    """A constant that, when a remote worker unpickles its plan (before READY), raises a flag
    with that worker's pid and stalls its start-up for a while."""

    def __init__(self, flag_dir: str) -> None:
        self.flag_dir = flag_dir

    def __reduce__(self):
        return (_stall_start, (self.flag_dir,))


def _stall_start(flag_dir: str) -> str:
    if os.environ.get("CASCATA_FAULTS_CALLER") != str(os.getpid()):
        write_flag(flag_dir, f"start-{os.getpid()}")
        time.sleep(3.0)
    return "stalled"


def test_remote_worker_killed_during_start_up_fails_cleanly_and_the_daemon_serves_on(
    daemons, key_file, ledger, flags, monkeypatch
):
    monkeypatch.setenv("CASCATA_FAULTS_CALLER", str(os.getpid()))
    d, where = _hosts(daemons)
    g = chain(ledger, 10)
    g.src.pub < StallsWhenLoaded(flags)
    killed = {}

    def kill_first():
        names = poll_for(lambda: sorted(n for n in os.listdir(flags) if n.startswith("start-")))
        killed["pid"] = int(names[0].split("-")[1])
        killed["at"] = time.time()
        os.kill(killed["pid"], signal.SIGKILL)

    killer = threading.Thread(target=kill_first)
    killer.start()
    try:
        with deadline("5 remote: worker killed before READY") as t, pytest.raises(
            WorkerLostError
        ) as info:
            try:
                g.run(key_file=key_file, **where)
            finally:
                t.started = killed.get("at", t.started)
    finally:
        killer.join()
    err = info.value
    assert err.pid == killed["pid"] and d.address in err.worker
    assert "SIGKILL" in err.cause
    poll_for(lambda: not d.workers())
    _serves_again(d, key_file, ledger)


def test_addresses_that_cannot_work_are_clear_errors_within_seconds(key_file, ledger):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]  # nothing listens here once the socket is closed
    cases = {
        "unreachable": f"127.0.0.1:{closed_port}",
        "typo": "127.0.0.1:77OO",
        "no host": ":7700",
    }
    for label, address in cases.items():
        g = chain(ledger, 5)
        with deadline(f"13: worker address {label}", bound=15.0), pytest.raises(CascataError) as info:
            g.run(workers=[address], key_file=key_file)
        assert address in str(info.value), f"{label}: {info.value}"


def test_a_daemon_asked_to_listen_on_a_port_in_use_says_so(key_file):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with deadline("13: daemon on a port in use", bound=30.0):
            done = subprocess.run(
                [sys.executable, "-m", "cascata.worker", "--listen", f"127.0.0.1:{port}",
                 "--key-file", key_file],
                cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
            )
    assert done.returncode != 0
    assert f"127.0.0.1:{port}" in done.stderr and "in use" in done.stderr.lower(), done.stderr
    assert "Traceback" not in done.stderr, done.stderr


SCRIPT = """
    WORKERS, KEY = sys.argv[2], sys.argv[3]

    g = Graph()
    g.numbers = Numbers
    g.mark = Mark
    numbers.n < 10**7
    numbers.out >> mark.x
    g.run(workers=WORKERS.split(","), key_file=KEY)
"""


def test_ctrl_c_with_remote_workers_stops_them_with_one_clean_message(daemons, key_file, flags, ledger):
    d, _ = _hosts(daemons)
    path = write_script(flags, SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, path, flags, d.address, key_file],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        wait_flag(flags, timeout=30)
        with deadline("14 remote: Ctrl-C to a script running on a daemon"):
            os.killpg(proc.pid, signal.SIGINT)
            _, err = proc.communicate(timeout=20)
            poll_for(lambda: not d.workers(), timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert err.count("Traceback") == 1 and err.rstrip().endswith("KeyboardInterrupt"), err
    for noise in ("Exception ignored", "never retrieved", "Error", "Warning"):
        assert noise not in err, err
    _serves_again(d, key_file, ledger)


def test_a_caller_silent_past_the_host_timeout_hears_that_the_daemon_stopped_its_workers(
    daemons, key_file, flags, ledger
):
    # A caller stopped for seconds (a laptop asleep, a debugger, or a network cut that ends
    # just as the daemon gives up): the daemon stops the run's workers, and once the caller
    # runs again the run must say the host was lost and why, not report a worker that
    # "exited with code 0".
    d, _ = _hosts(daemons)
    path = write_script(flags, SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, path, flags, d.address, key_file],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_flag(flags, timeout=30)
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            poll_for(lambda: not d.workers(), timeout=15)
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        with deadline("caller stopped past the host timeout: error once it runs again"):
            _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    last = err.strip().splitlines()[-1]
    assert last.startswith("cascata.errors.HostLostError"), err
    assert d.address in last and "stopped the run's workers" in last, last
    _serves_again(d, key_file, ledger)
