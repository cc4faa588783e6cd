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

# Seconds between checks while waiting for children to exit.
_REAP_POLL = 0.002


def fork_worker(target: Callable[..., Any], *args: Any) -> int:
    """Start ``target(*args)`` in a forked child; return its pid. The child never returns."""
    sys.stdout.flush()
    sys.stderr.flush()  # else the child would print the parent's buffered text a second time
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        # Ctrl-C goes to the whole process group; the coordinator alone decides how to stop.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # An asyncio loop of the caller (a server, a notebook kernel) may have set a wakeup fd:
        # the child shares that socket, so its signals (SIGTERM at the end of a run) would
        # reach the caller's signal handlers.
        signal.set_wakeup_fd(-1)
        _run_after_fork_hooks()
        target(*args)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _run_after_fork_hooks() -> None:
    """Let multiprocessing(-style) objects inherited from the caller, such as Manager proxies,
    reset their connections as they would in a child those libraries started themselves."""
    for name in ("multiprocessing.util", "multiprocess.util"):
        module = sys.modules.get(name)
        hook = getattr(module, "_run_after_forkers", None)
        if hook is not None:
            hook()


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
    """After a STOP was sent: wait ``grace``, SIGTERM the rest, wait ``term_grace``, SIGKILL."""
    pending = set(pids)
    gone = wait_all(pending, grace)
    pending -= gone.keys()
    for sig, wait in ((signal.SIGTERM, term_grace), (signal.SIGKILL, 5.0)):
        if not pending:
            break
        for pid in pending:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        more = wait_all(pending, wait)
        gone.update(more)
        pending -= more.keys()
    return gone
