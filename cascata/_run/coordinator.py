"""The coordinator: starts the workers of a plan, supervises them, and ends the run.

It lives in the caller's process. ``start()`` forks the workers (before any ZeroMQ context
exists here), binds the control ROUTER, waits for READY from every worker and says GO; a
supervisor thread then relays logs, watches processes and heartbeats, detects quiescence, and
stops everything on the first fault. ``join()`` waits for that thread and raises its error.
"""

from __future__ import annotations

import pickle
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import zmq

from .._plan import LOCAL, Plan
from ..errors import DeadlockError, ProtocolError, TimeoutError, WorkerLostError, with_others
from ..log import reemit
from ..transport import control, sockets
from ..transport.endpoints import ipc_endpoint, make_run_dir, remove_run_dir
from ..worker.collect import unpack
from ..worker.inputs import WAIT_OUT
from ..worker.liveness import Liveness
from .events import STATS_INTERVAL, Failed, Finished, LogLine, Observers, Started, Stats
from .launch import LocalWorkerHandle, RemoteWorkerHandle, WorkerHandle, stop_all
from .report import RunReport

if TYPE_CHECKING:  # the multi-host modules load only for runs on daemons (W4 start-up time)
    from .hosts import Cluster
    from .remote import RemoteWorkers

# Seconds between quiescence probes (two equal rounds in a row end the run or report a deadlock).
PROBE_INTERVAL = 0.05
# Seconds messages between workers may stay undelivered while every worker is idle and nothing
# changes, before the run fails with ProtocolError: a data connection cut between two hosts
# (their control connections still up) would otherwise leave the run waiting forever. An item
# whose transfer takes longer than this while everything else waits is the price (1 GB at
# 100 MB/s still fits).
TRANSIT_TIMEOUT = 10.0
# Seconds a worker has to act on ABORT after a timeout before SIGTERM: a component holding its
# loop must not make the caller wait past the limit it set.
TIMEOUT_GRACE = 0.25
# Milliseconds the supervisor waits on the control socket per turn (bounds reaction time).
POLL_MS = 20
STOPPED_HINT = (
    "The run was stopped. Something stopped the worker process (SIGSTOP, or a debugger attached "
    "to it) for longer than the liveness limit: continue it sooner, or give it more time with "
    "g.run(liveness_timeout=...)."
)
FROZEN_HINT = (
    "The run was stopped. A worker that neither answers nor uses CPU is stuck, e.g. in native "
    "code waiting on a lock or a device while holding the GIL; if such waits are expected, "
    "raise g.run(liveness_timeout=...)."
)
FINISH_HINT = (
    "Its components had ended, but the process did not exit within the stop grace: a thread "
    "or child process a component started that does not end holds it."
)


class Coordinator:
    def __init__(
        self,
        plan: Plan,
        sinks: list[list[Any]] | None = None,
        timeout: float | None = None,
        observers: Observers | None = None,
        cluster: Cluster | None = None,
    ) -> None:
        self.plan = plan
        self._observers = observers or Observers()
        # The latest live counters of each worker (StatsReply), for observers.
        self._live: dict[int, control.StatsReply] = {}
        # The daemons of a run on other hosts, else None; connected in start(), after the fork.
        self._cluster = cluster
        self.remote: RemoteWorkers | None = None
        self._timeout = timeout
        self._deadline = float("inf")
        # The latest snapshot of each worker, whichever probe it answered (for a timeout).
        self._latest: dict[int, control.Snapshot] = {}
        self._on_stopped: list[Callable[[], None]] = []
        self._callbacks_lock = threading.Lock()
        self._callbacks_called = False
        # The caller's lists of g.collect, by the number OutPortPlan.collect gives.
        self._sinks = sinks or []
        self.n = plan.num_workers
        self.handles: dict[int, WorkerHandle] = {}
        self.error: BaseException | None = None
        # Errors reported after the first one, while the run was being stopped.
        self._others: list[BaseException] = []
        self.report: RunReport | None = None
        self._abort = threading.Event()
        self._thread: threading.Thread | None = None
        # Set once the supervisor has stopped every worker (see join()).
        self._stopped = threading.Event()
        self._run_dir = ""
        self._stats: dict[int, Any] = {}
        self._started_at = 0.0

    # -- start ----------------------------------------------------------------------------------

    def start(self) -> None:
        self._started_at = time.monotonic()
        if self._timeout is not None:
            self._deadline = self._started_at + self._timeout
        data: dict[int, str] = {}
        if any(self.plan.host_of(i) == LOCAL for i in range(self.n)):
            self._run_dir = make_run_dir()
            ctl = ipc_endpoint(self._run_dir, "ctl")
            data = {i: ipc_endpoint(self._run_dir, f"d{i}") for i in range(self.n)}
        else:  # only daemons' workers: no ipc, so no directory a killed caller would leave behind
            ctl = f"inproc://cascata-ctl-{self.plan.run_id}"
        try:
            # Local workers are forked before this process has a zmq context (fork safety); they
            # inherit the cluster key (never pickled) for their CurveZMQ links to other hosts.
            key = self._cluster.key() if self._cluster is not None else None
            for i in range(self.n):
                if self.plan.host_of(i) == LOCAL:
                    self.handles[i] = LocalWorkerHandle(self.plan, i, ctl, data[i], key)
                    self.handles[i].start()
            self.ctx = zmq.Context()
            self.router = sockets.open_control_router(self.ctx)
            sockets.bind(self.router, ctl)
            now = time.monotonic()
            limit = self.plan.settings.liveness_limit
            self._liveness = {i: Liveness(limit, now) for i in range(self.n)}
            self._next_sample = now
            if self._cluster is not None:
                from .remote import RemoteWorkers  # only for runs on daemons

                self.remote = RemoteWorkers(self.plan, self._cluster.connect(self.ctx))
                self.handles.update(self.remote.handles)
                self.remote.launch()
            endpoints, binds, ipc = self._wait_ready()
            self._send_all(control.Go(peers=endpoints, binds=binds, ipc=ipc))
            labels = tuple(c.label for c in self.plan.components)
            self._observers.emit(Started(labels, self.n))
            self._thread = threading.Thread(target=self._supervise, name="cascata-coordinator")
            self._thread.daemon = True
            self._thread.start()
        except BaseException as exc:
            if self._thread is None:
                self._shutdown(abort=True)
            if isinstance(exc, _Failure):
                raise exc.error from None
            raise

    def _wait_ready(self) -> tuple[dict[int, str], dict[int, dict[int, str]], dict[int, str]]:
        endpoints: dict[int, str] = {}
        binds: dict[int, dict[int, str]] = {}
        ipc: dict[int, str] = {}
        limit = self.plan.settings.start_timeout
        deadline = time.monotonic() + limit
        while len(endpoints) < self.n:
            if time.monotonic() > deadline:
                missing = min(set(range(self.n)) - endpoints.keys())
                raise _Failure(self._lost(missing, f"did not report READY within {limit:.0f} s"))
            self._check_processes()
            self._check_hosts()
            for who, msg in self._receive(POLL_MS):
                if isinstance(msg, control.Ready):
                    endpoints[who] = msg.endpoint
                    if msg.binds:
                        binds[who] = msg.binds
                    if msg.ipc:
                        ipc[who] = msg.ipc
                else:
                    self._handle(who, msg)
            if self.error is not None:
                raise _Failure(self.error)
        return endpoints, binds, ipc

    # -- supervision ----------------------------------------------------------------------------

    def _supervise(self) -> None:
        try:
            self._loop()
        except _Failure as failure:
            self.error = failure.error
        except BaseException as exc:  # a bug here must still stop the workers
            self.error = exc
        finally:
            try:
                self._shutdown(abort=self.error is not None or self._abort.is_set())
            finally:
                if self.error is None and self.report is not None:
                    self._observers.emit(Finished(self.report))
                else:
                    self._observers.emit(Failed(self.error or KeyboardInterrupt()))
                self._stopped.set()
                with self._callbacks_lock:
                    self._callbacks_called = True
                for callback in self._on_stopped:
                    callback()

    def _loop(self) -> None:
        self._done: set[int] = set()
        self._probe = 0
        self._snapshots: dict[int, control.Snapshot] = {}
        self._previous: list[Any] | None = None
        self._transit: tuple[list[Any], float] | None = None
        self._ended_all = False
        next_probe = time.monotonic() + PROBE_INTERVAL
        next_stats = time.monotonic() if self._observers.wants_stats else float("inf")
        while len(self._done) < self.n:
            if self._abort.is_set():
                raise _Failure(KeyboardInterrupt())
            if time.monotonic() >= self._deadline:
                raise _Failure(TimeoutError(self._timeout or 0.0, self._still_running()))
            for who, msg in self._receive(POLL_MS):
                self._handle(who, msg)
            if self.error is not None:
                raise _Failure(self.error)
            self._check_processes()
            self._check_hosts()
            self._check_heartbeats()
            if time.monotonic() >= next_probe:
                next_probe = time.monotonic() + PROBE_INTERVAL
                self._send_probe()
            if time.monotonic() >= next_stats:
                next_stats = time.monotonic() + STATS_INTERVAL
                self._send_all(control.StatsRequest())
                self._observers.emit(Stats(self._live_report()))
        self._check_edge_totals()

    def _check_edge_totals(self) -> None:
        error = lost_at_end(self.plan, list(self._stats.values()))
        if error is not None:
            raise _Failure(error)

    def _receive(self, timeout_ms: int) -> list[tuple[int, control.Record]]:
        out: list[tuple[int, control.Record]] = []
        if self.remote is None:
            if not self.router.poll(timeout_ms):
                return out
        else:
            poller = zmq.Poller()
            poller.register(self.router, zmq.POLLIN)
            self.remote.register(poller)
            if not poller.poll(timeout_ms):
                return out
            for link in self.remote.links.values():
                self.remote.drain(link, out)
        while True:
            try:
                ident, frame = self.router.recv_multipart(flags=zmq.NOBLOCK)
            except zmq.Again:
                break
            out.append((control.WorkerId.parse(ident).index, control.decode(frame)))
        now = time.monotonic()
        for who, _ in out:
            self._liveness[who].answered(now)
        return out

    def _handle(self, who: int, msg: control.Record) -> None:
        if isinstance(msg, control.Log):
            comp = tuple(msg.component) if msg.component else None
            host = self.plan.host_of(who)
            text = msg.message if host == LOCAL else f"[{host}] {msg.message}"
            reemit(msg.logger, msg.levelno, msg.level, comp, text, msg.created, host)
            self._observers.emit(LogLine(msg.level, comp, text))
        elif isinstance(msg, control.Output):  # only workers on daemons send these
            from .remote import show_output

            show_output(msg, self.plan.host_of(who))
        elif isinstance(msg, control.StatsReply):
            self._live[who] = msg
        elif isinstance(msg, control.Error):
            error = pickle.loads(msg.error)
            if self.error is None:
                self.error = error
            else:
                self._others.append(error)
        elif isinstance(msg, control.Done):
            self._done.add(who)
            self._stats[who] = msg
        elif isinstance(msg, control.Collected):
            self._sinks[msg.sink].extend(unpack(msg))
            ack = control.CollectAck(count=msg.count, nbytes=msg.nbytes).encode()
            self._send(who, ack)
        elif isinstance(msg, control.Snapshot):
            self._latest[who] = msg
            if msg.probe == self._probe:
                self._snapshots[who] = msg
                if len(self._snapshots) == self.n:
                    self._judge_round()

    def _live_report(self) -> RunReport:
        """A report of the run so far: live counters, final ones for finished workers."""
        records: dict[int, Any] = {**self._live, **self._stats}
        return RunReport.build(self.plan, records, {}, time.monotonic() - self._started_at)

    def _still_running(self) -> list[str]:
        """Components not finished, as the latest snapshots tell (all of a silent worker's)."""
        running: list[str] = []
        for i in range(self.n):
            if i in self._done:
                continue
            snap = self._latest.get(i)
            running += snap.active if snap is not None else self.plan.placement.get(i, ())
        return running

    def when_stopped(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (in the supervisor's thread) once every worker has stopped."""
        with self._callbacks_lock:
            if not self._callbacks_called:
                self._on_stopped.append(callback)
                return
        callback()

    def abort(self) -> None:
        """Stop the run (as Ctrl-C does); join() then raises KeyboardInterrupt."""
        self._abort.set()

    def _check_processes(self) -> None:
        for i, handle in self.handles.items():
            if handle.poll() is None:
                continue
            if self.error is None:
                self.error = self._lost(i, handle.describe_exit(), handle.exit_hint())
            raise _Failure(self.error)

    def _check_heartbeats(self) -> None:
        """A worker is lost when it neither answered nor used CPU for the liveness limit (a long
        C call holding the GIL silences the heartbeat thread but not the CPU: busy, not frozen)."""
        now = time.monotonic()
        sample = now >= self._next_sample
        if sample:
            self._next_sample = now + self.plan.settings.heartbeat_interval
        for i, watch in self._liveness.items():
            if sample:
                watch.sampled(now, self.handles[i].sample())
            cause = watch.verdict(now)
            if cause is not None:
                raise _Failure(
                    self._lost(i, cause, STOPPED_HINT if watch.stopped else FROZEN_HINT)
                )

    # -- quiescence -----------------------------------------------------------------------------

    def _send_probe(self) -> None:
        self._probe += 1
        self._snapshots = {}
        self._send_all(control.Probe(probe=self._probe))

    def _judge_round(self) -> None:
        snaps = [self._snapshots[i] for i in range(self.n)]
        key = [(s.events, s.sent, s.received) for s in snaps]
        idle = all(s.idle for s in snaps)
        in_transit = sum(s.sent for s in snaps) - sum(s.received for s in snaps)
        quiet = idle and not in_transit
        self._check_transit(key, idle and in_transit > 0, in_transit)
        stable = quiet and key == self._previous
        self._previous = key if quiet else None
        if not stable:
            return
        self._previous = None
        waits = [w for s in snaps for w in s.waits]
        blocked = [w for w in waits if w[1] == WAIT_OUT]
        if blocked or self._ended_all:
            raise _Failure(_deadlock(waits))
        self._ended_all = True
        self._send_all(control.EndAll())

    def _check_transit(self, key: list[Any], stalled: bool, in_transit: int) -> None:
        """ProtocolError once messages sent between workers have not arrived for
        TRANSIT_TIMEOUT while every worker waited and nothing changed."""
        if not stalled:
            self._transit = None
            return
        if self._transit is None or self._transit[0] != key:
            self._transit = (key, time.monotonic())
            return
        waited = time.monotonic() - self._transit[1]
        if waited >= TRANSIT_TIMEOUT:
            raise _Failure(
                ProtocolError(
                    f"items lost in transit: {in_transit} message(s) sent between workers have not "
                    f"arrived for {waited:.0f} s while every component waits. A data connection "
                    "between worker hosts is cut or blocked (their control connections are up): "
                    "check routes and firewalls between the hosts"
                )
            )

    def _send_all(self, msg: control.Record, flags: int = 0) -> None:
        data = msg.encode()
        for i in range(self.n):
            self._send(i, data, flags)

    def _send(self, index: int, data: bytes, flags: int = 0) -> None:
        handle = self.handles.get(index)
        identity = control.WorkerId(index).control
        if isinstance(handle, RemoteWorkerHandle):
            handle.link.relay(identity, data, flags)  # the daemon relays it over ipc
        else:
            self.router.send_multipart([identity, data], flags=flags)

    def _check_hosts(self) -> None:
        if self.remote is not None:
            self.remote.check()

    # -- stop -----------------------------------------------------------------------------------

    def _shutdown(self, abort: bool) -> None:
        router = getattr(self, "router", None)
        if router is not None:
            try:
                self._send_all(control.Abort() if abort else control.Finish(), flags=zmq.NOBLOCK)
            except zmq.ZMQError:
                pass
        settings = self.plan.settings
        grace = settings.term_grace if abort else settings.stop_grace
        if isinstance(self.error, TimeoutError):  # the user's deadline: stop without delay
            grace = min(grace, TIMEOUT_GRACE)
        stop_all(self.handles.values(), grace, settings.term_grace)
        if self.remote is not None and router is not None:
            self.remote.release(grace)
        if not abort and self.error is None:
            self._check_clean_exit()
        if router is not None:
            self._collect_late_errors()
            sockets.close(router)
        if self.remote is not None:
            self.remote.close()
        if router is not None:
            self.ctx.term()
        if self._run_dir:
            remove_run_dir(self._run_dir)
        if self.error is None and not abort:
            pids = {i: h.pid or 0 for i, h in self.handles.items()}
            self.report = RunReport.build(
                self.plan, self._stats, pids, time.monotonic() - self._started_at
            )

    def _collect_late_errors(self) -> None:
        """Errors the workers reported while they were being stopped (another component that
        failed at about the same time): the raised error mentions them."""
        if self.error is None:
            return
        for who, msg in self._receive(0):
            if isinstance(msg, control.Error):
                self._handle(who, msg)

    def _check_clean_exit(self) -> None:
        for i, handle in self.handles.items():
            if handle.status:  # ended, and not with exit code 0
                self.error = self._lost(
                    i, f"{handle.describe_exit()} while finishing", FINISH_HINT
                )
                return

    def _lost(self, index: int, cause: str, hint: str | None = None) -> WorkerLostError:
        handle = self.handles.get(index)
        name = handle.name if handle else f"worker-{index}"
        pid = handle.pid if handle else None
        return WorkerLostError(name, pid, cause, self.plan.placement.get(index, ()), hint=hint)

    # -- join -----------------------------------------------------------------------------------

    def join(self) -> RunReport:
        thread = self._thread
        assert thread is not None, "start() first"
        # Wait on an Event, not Thread.join: before Python 3.13 a Ctrl-C interrupting join()
        # marks the thread as finished (CPython issue 90882), so the second join returned at
        # once and the interpreter exited before the workers were stopped and the run
        # directory removed.
        try:
            while not self._stopped.wait(0.1):
                pass
        except KeyboardInterrupt:
            self._abort.set()
            self.wait_stopped()
            raise
        thread.join()
        if isinstance(self.error, KeyboardInterrupt):
            raise KeyboardInterrupt
        if self.error is not None:
            raise with_others(self.error, self._others)
        assert self.report is not None
        return self.report


    def wait_stopped(self) -> None:
        """Wait until the supervisor has stopped every worker, through further Ctrl-Cs: the
        stop ladder is bounded (it ends in SIGKILL), and leaving now would orphan workers and
        print a second traceback chained to the first."""
        while True:
            try:
                self._stopped.wait()
                return
            except KeyboardInterrupt:
                continue


class _Failure(Exception):
    """Unwinds the supervisor with the error the run will raise."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _deadlock(waits: list[list[str]]) -> DeadlockError:
    """The run-time deadlock error: who is blocked on which full port and who waits for input
    on which port, each once, and a last line with the usual fix."""
    blocked = sorted({(label, target) for label, state, target in waits if state == WAIT_OUT})
    waiting = sorted({(label, target) for label, state, target in waits if state != WAIT_OUT})
    issues = [f"Runtime deadlock: {who} is blocked sending into {port} (full)" for who, port in blocked]
    issues += [f"Runtime deadlock: {who} waits for input on '{port}'" for who, port in waiting]
    text = "Deadlock detected:\n  " + "\n  ".join(issues)
    if blocked:
        text += "\n" + _usual_fix([p for _, p in blocked], waiting)
    return DeadlockError(issues, message=text)


def _usual_fix(full: list[str], waiting: list[tuple[str, str]]) -> str:
    """One line: typically a component waits on one port while its other port is full, because
    the branch into the first holds its items back (a batch, a component sending at its end)."""
    for who, port in waiting:
        name = who.split("@")[0]
        for target in full:
            if target.split(".")[0] == name and target != port:
                return (
                    f"Usual fix: {name} waits on {port} while {target} is full, as the branch into "
                    f"{port} holds its items back: give {target} a larger capacity "
                    f"(g.{target}.capacity = N, N at least the items held back), or wire the branch "
                    f"into {target} with '>>=' so it is taken as one list."
                )
    return (
        f"Usual fix: a larger capacity on {full[0]} (g.{full[0]}.capacity = N), or '>>=' on the "
        "branch that holds items back."
    )


def lost_at_end(plan: Plan, dones: list[control.Done]) -> ProtocolError | None:
    """Items lost on an edge, judged when every worker is done: each end of stream a consumer
    accepted must count what its publisher sent. A stray or forged end of stream ends a stream
    early, and the items after it may not have reached the consumer (and been refused there)
    before the run finishes; without this check such a run would return success."""
    sent: dict[int, int] = {}
    for done in dones:
        sent.update(done.sent)
    labels = {e.edge_id: e.label for e in plan.edges}
    for done in dones:
        for edge, total in done.ended.items():
            if edge in sent and sent[edge] != total:
                return ProtocolError(
                    f"items lost on connection {labels.get(edge, edge)}: the publisher sent "
                    f"{sent[edge]} items, the end of stream its consumer received said {total}"
                )
    return None
