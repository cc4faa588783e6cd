"""How a worker process begins after fork and how it ends: like a normal interpreter would.

A forked worker must not run the exit machinery it inherited from the caller (the caller's
``atexit`` handlers, its ``multiprocessing`` finalizers, its buffered files), so it leaves through
``os._exit``, as ``multiprocessing`` children do. Before that, :func:`end_process` does what an
interpreter's own shutdown would do for what the worker itself made: it runs the
``multiprocessing`` (and ``multiprocess``) exit functions (queue feeder threads flush their
items, child processes are joined), waits for non-daemon threads, flushes files nobody closed,
and stops every process the worker's components started. Local workers and a remote daemon's
workers end through the same function.

Each worker leads its own process group, so the stop ladder can signal a worker together with
everything its components started (``killpg``), also after the worker itself is gone; and it is
a child subreaper (Linux), so a grandchild whose parent exits is re-parented to the worker, which
stops it, instead of escaping to init.
"""

from __future__ import annotations

import ctypes
import gc
import io
import os
import signal
import sys
import threading
import time
import traceback
from typing import Any, NoReturn

# Seconds the processes components started get between SIGTERM and SIGKILL when a worker ends.
DESCENDANT_GRACE = 0.5
# Seconds after that before a worker stops trying (a descendant that forks without end).
GIVE_UP_AFTER = 2.0
# Seconds between checks while waiting for those processes to exit.
_REAP_POLL = 0.01
# prctl option that makes this process adopt its orphaned descendants (linux/prctl.h).
_PR_SET_CHILD_SUBREAPER = 36
_MP_MODULES = ("multiprocessing", "multiprocess")


def start_process() -> None:
    """Call first in a freshly forked worker: own process group, subreaper, and a clean slate
    for the exit machinery (only what this worker makes is finalized when it ends)."""
    try:
        os.setpgid(0, 0)
    except OSError:
        pass  # already a group leader (the parent set it first)
    _become_subreaper()
    # Ctrl-C goes to the caller's process group; the coordinator alone decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # An asyncio loop of the caller (a server, a notebook kernel) may have set a wakeup fd: the
    # child shares that socket, so its signals (SIGTERM at the end of a run) would reach the
    # caller's signal handlers.
    signal.set_wakeup_fd(-1)
    # Objects inherited from the caller move to the permanent generation: the collector never
    # walks them (no copy-on-write of the caller's heap), and gc.get_objects() at the end lists
    # only what this worker made, so the caller's half-written buffers are not flushed twice.
    gc.freeze()
    executors = sys.modules.get("concurrent.futures.thread")
    if executors is not None:
        # Executor threads of the caller do not exist here (fork keeps only the forking thread,
        # which may be one of them: g.run_async forks from one); the interpreter's exit would
        # join them, and join itself ("cannot join current thread").
        executors._threads_queues.clear()  # type: ignore[attr-defined]
    for name in _MP_MODULES:
        util = sys.modules.get(f"{name}.util")
        process = sys.modules.get(f"{name}.process")
        if util is None or process is None:
            continue
        # As multiprocessing's own children do: the caller's finalizers (its queues' feeders,
        # its managers' shutdown) and children are not ours ...
        util._finalizer_registry.clear()
        process._children = set()
        # ... and inherited objects (Manager proxies, queues) reset their connections.
        util._run_after_forkers()


def complete_work(stall_limit: float) -> str | None:
    """Do the shutdown work that may take a while, before the worker reports DONE (so it is
    supervised like any work, not cut short by the stop ladder): let ``multiprocessing``
    queues' feeder threads hand over every item, run the ``multiprocessing`` exit functions
    (children joined), flush files. Returns what could not complete: a queue whose items
    nobody takes for ``stall_limit`` seconds. Threads are joined later, in :func:`end_process`
    (the event loop's own executor threads end only with the loop)."""
    for name in _MP_MODULES:
        util = sys.modules.get(f"{name}.util")
        if util is None:
            continue
        buffers, feeders = _queue_feeders(util)
        util._run_finalizers(0)  # closes the queues: each feeder ends once its buffer is out
        stuck = _wait_feeders(buffers, feeders, stall_limit)
        if stuck:
            return (
                f"{stuck} item(s) put on a {name}.Queue were not taken by anyone for "
                f"{stall_limit:g} s"
            )
        util._exit_function()
    flush_files()
    return None


def _queue_feeders(util: object) -> tuple[list[Any], list[threading.Thread]]:
    """The buffers and feeder threads of the queues this process put items on, found through
    the finalizers each queue registers when its feeder starts."""
    buffers: list[Any] = []
    feeders: list[threading.Thread] = []
    for fin in list(util._finalizer_registry.values()):  # type: ignore[attr-defined]
        callback = getattr(fin, "_callback", None)
        args = getattr(fin, "_args", None) or ()
        kind = getattr(callback, "__name__", "")
        if kind == "_finalize_close" and args:
            buffers.append(args[0])
        elif kind == "_finalize_join" and args:
            thread = args[0]()
            if thread is not None:
                feeders.append(thread)
    return buffers, feeders


def _wait_feeders(buffers: list[Any], feeders: list[threading.Thread], stall_limit: float) -> int:
    """Wait while the feeders hand items over; 0 when all are out, else how many are left once
    that many stayed unchanged for ``stall_limit`` seconds (nobody reads the queue)."""
    last = -1
    since = time.monotonic()
    while True:
        alive = sum(1 for t in feeders if t.is_alive())
        if not alive:
            return 0
        left = sum(len(b) for b in buffers) + alive  # the item a feeder is writing, or its sentinel
        now = time.monotonic()
        if left != last:
            last, since = left, now
        elif now - since > stall_limit:
            return left
        time.sleep(_REAP_POLL)


def end_process(code: int) -> NoReturn:
    """Leave the worker process with exit status ``code`` after an interpreter's shutdown work
    for what it made (also when :func:`complete_work` was not reached: a failed run):
    multiprocessing exit functions, non-daemon threads, unclosed files flushed, started
    processes stopped."""
    try:
        # The interpreter's order: threads first (they may still put on queues), then atexit.
        threading._shutdown()  # type: ignore[attr-defined]
        for name in _MP_MODULES:
            util = sys.modules.get(f"{name}.util")
            if util is not None:
                util._exit_function()
        flush_files()
    except BaseException:
        traceback.print_exc()
        code = code or 1
    finally:
        try:
            stop_descendants(DESCENDANT_GRACE)
        finally:
            _flush_std_streams()
            os._exit(code)


def abandon_process(code: int) -> NoReturn:
    """Leave at once, taking every process this worker started along (the caller is gone:
    nobody will read what they produce)."""
    try:
        stop_descendants(0.0)
    finally:
        os._exit(code)


def flush_files() -> None:
    """Finalize files this process made and dropped, and flush the ones still referenced."""
    gc.collect()
    for obj in gc.get_objects():
        if isinstance(obj, io.IOBase):
            try:
                if not obj.closed:
                    obj.flush()
            except Exception:
                pass  # a broken pipe or a closed descriptor: an interpreter ignores these too


def stop_descendants(grace: float) -> None:
    """Stop the processes this one started and their descendants: SIGTERM, then SIGKILL after
    ``grace`` seconds. As a subreaper this process adopts the children of each one that exits,
    so the loop reaches the whole tree, also descendants that left the process group."""
    deadline = time.monotonic() + grace
    give_up = deadline + GIVE_UP_AFTER
    sig = signal.SIGTERM if grace > 0 else signal.SIGKILL
    signalled: set[int] = set()
    while True:
        children = _reap_and_list_children()
        if not children or time.monotonic() > give_up:
            return
        if sig == signal.SIGTERM and time.monotonic() >= deadline:
            sig = signal.SIGKILL
            signalled.clear()
        for pid in children - signalled:
            try:
                os.kill(pid, sig)  # by pid is safe: a child not yet reaped keeps its pid
            except (ProcessLookupError, PermissionError):
                pass
        signalled |= children
        time.sleep(_REAP_POLL)


def _reap_and_list_children() -> set[int]:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return set()
        if pid == 0:
            break
    return _children_of(os.getpid())


def _children_of(pid: int) -> set[int]:
    """Pids whose parent is ``pid``, from /proc (``task/*/children`` is not in every kernel)."""
    found: set[int] = set()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                # after the command name (which may hold spaces): state, ppid, ...
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.add(int(entry))
    return found


def _become_subreaper() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # without it, a grandchild whose parent exits early may escape; the group still works


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass
