"""Local worker processes: fork, and the stop ladder (STOP → grace → SIGTERM → grace → SIGKILL).

Workers are forked so that a plain script without ``if __name__ == '__main__'`` works and so that
components defined in ``__main__``, a test module or a notebook need no serialization. The
coordinator forks before it creates any ZeroMQ context: a child never inherits live sockets.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from . import ending
from .liveness import ProcessSample

# Seconds between checks while waiting for children to exit.
_REAP_POLL = 0.002


def fork_worker(target: Callable[..., Any], *args: Any) -> int:
    """Start ``target(*args)`` in a forked child that leads its own process group; return its
    pid. The child never returns: it ends through :func:`ending.end_process`."""
    sys.stdout.flush()
    sys.stderr.flush()  # else the child would print the parent's buffered text a second time
    pid = os.fork()
    if pid:
        try:
            # Both sides set the group, so a stop signal sent right after fork reaches it.
            os.setpgid(pid, pid)
        except OSError:
            pass  # the child did it first, or is already gone
        return pid
    code = 1
    try:
        ending.start_process()
        target(*args)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    ending.end_process(code)


def exit_status(pid: int) -> int | None:
    """The raw wait status if ``pid`` has exited (reaping it), else None."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return 0
    return status if done else None


def describe_status(status: int) -> str:
    """A readable cause of exit: the signal that ended the process, or its exit code."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"killed by signal {sig} ({name})"
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
    return f"exited with code {code}"


# What to look at, by how a worker ended (WorkerLostError.hint).
_OOM_HINT = (
    "The run was stopped. SIGKILL is most often the kernel's OOM killer: check the system log "
    "(dmesg) and the memory a worker needs."
)
_CRASH_HINT = (
    "The run was stopped. A crash in native code (an extension module) ends a process this way; "
    "run the component alone with faulthandler enabled to find it."
)
_SIGNAL_HINT = "The run was stopped. Another program (or a user) sent the worker this signal."
_EXIT_HINT = (
    "The run was stopped. A component or a library it calls ended the process directly "
    "(os._exit or a fatal error); exceptions and sys.exit() in a component are reported as "
    "ComponentError instead."
)
_CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGFPE, signal.SIGILL}


def status_hint(status: int) -> str:
    """The WorkerLostError hint that fits a wait status."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGKILL:
            return _OOM_HINT
        return _CRASH_HINT if sig in _CRASH_SIGNALS else _SIGNAL_HINT
    return _EXIT_HINT


def sample_process(pid: int) -> ProcessSample | None:
    """CPU time and state of process ``pid`` from /proc (None where there is no /proc, or
    once the process is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # after the command name (which may hold spaces and parentheses): fields 3, 4, ...
            fields = f.read().rsplit(b")", 1)[1].split()
        # state is field 3, utime and stime fields 14 and 15 (proc(5))
        return ProcessSample(int(fields[11]) + int(fields[12]), fields[0].decode())
    except (OSError, IndexError, ValueError):
        return None


def wait_all(pids: Iterable[int], timeout: float) -> dict[int, int]:
    """Reap the given children for up to ``timeout`` seconds; return pid -> status of those gone."""
    pending = set(pids)
    gone: dict[int, int] = {}
    deadline = time.monotonic() + timeout
    while pending:
        for pid in list(pending):
            status = exit_status(pid)
            if status is not None:
                gone[pid] = status
                pending.discard(pid)
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(_REAP_POLL)
    return gone


def stop_ladder(pids: Iterable[int], grace: float, term_grace: float) -> dict[int, int]:
    """After a STOP was sent: wait ``grace``, SIGTERM the rest, wait ``term_grace``, SIGKILL;
    each signal goes to the worker's whole process group, and every group is swept at the end."""
    pending = set(pids)
    gone = wait_all(pending, grace)
    pending -= gone.keys()
    for sig, wait in ((signal.SIGTERM, term_grace), (signal.SIGKILL, 5.0)):
        if not pending:
            break
        for pid in pending:
            signal_group(pid, sig)
        more = wait_all(pending, wait)
        gone.update(more)
        pending -= more.keys()
    for pid in gone:
        signal_group(pid, signal.SIGKILL)  # what its components started and left behind
    return gone


def signal_group(pid: int, sig: int) -> None:
    """Send ``sig`` to the process group a worker leads: the worker and what its components
    started. Safe after the worker was reaped: a group id is not reused while it has members."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
