"""A worker process: one asyncio loop (zmq.asyncio) running its components as tasks.

Lifecycle: bind the data PULL socket, report READY, wait for GO (which carries the peers'
endpoints), connect, run the components, report DONE, then keep every socket open until FINISH
(so no consumer can lose the tail of a stream), and exit. ABORT at any point stops at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import socket
import threading
import traceback
from collections.abc import Callable
from typing import Any

import zmq
import zmq.asyncio

from .._plan import LOCAL, ComponentPlan, Plan
from ..errors import CascataError, ComponentError, ProtocolError, WorkerLostError
from ..log import awaiting_component, use_forwarding
from ..transport import control, sockets
from ..transport.channel import Dispatcher, Link
from ..transport.endpoints import ipc_endpoint, remove_run_dir
from .collect import CollectEdge, Collector
from .ending import abandon_process, complete_work
from .inputs import DONE, WAIT_IN, WAIT_OUT, Activity, InputChannel, Tracker
from .output import forward_output
from .ports import InlineAbort, InlineEdge, LocalEdge, OutputPort, RemoteEdge
from .runner import USER_ERRORS, ComponentRuntime, UserExit
from .unawaited import watch_sends

HOST = socket.gethostname()
UNREAD_QUEUE_HINT = (
    "Read a multiprocessing queue while the run goes (in a thread, or between g.start() and "
    "g.join()), as with multiprocessing.Process: a queue holds little until it is read. "
    "For results, g.collect(port) or a Manager().list() need no reader."
)
# Exit status of a worker that ended because the process that started it is gone.
CALLER_GONE_EXIT = 4
# Most plain values a publisher may buffer beyond capacity at a consumer in the same worker: it
# saves task switches (W2 with 2 workers: 32 gave 25-39k items/s, 96 gave 40-42k).
LOCAL_SLACK = 96
# Messages handled per turn of the data reader before other tasks get the loop.
READ_BATCH = 64


class Worker:
    def __init__(
        self, plan: Plan, index: int, ctl_endpoint: str, data_endpoint: str, key: Any = None
    ) -> None:
        self.plan = plan
        self.index = index
        host = plan.host_of(index)
        self.name = f"worker-{index} (pid {os.getpid()}, {'localhost' if host == LOCAL else host})"
        self.ctl_endpoint = ctl_endpoint
        self.data_endpoint = data_endpoint
        # The cluster key: data sockets between hosts (tcp) are CurveZMQ; ipc ones need none.
        self.key = key
        self.tracker = Tracker()
        self.links: dict[int, Link] = {}
        self.runtimes: list[ComponentRuntime] = []
        self.channels: list[InputChannel] = []
        self._failed = False
        self._restore_output: Callable[[], None] = lambda: None
        self._finish: asyncio.Future[control.Record] | None = None
        self._hosts: dict[int, asyncio.Task[None]] = {}  # id(activity) -> the task reporting it

    # -- setup ----------------------------------------------------------------------------------

    def _open_sockets(self, ctx: zmq.Context) -> None:
        self.actx = zmq.asyncio.Context.shadow(ctx.underlying)
        wid = control.WorkerId(self.index)
        self.ctl = sockets.open_control_dealer(self.actx, wid.control, sockets.CONTROL_LINGER_MS)
        sockets.connect(self.ctl, self.ctl_endpoint)
        self.pull = sockets.open_data_pull(ctx)
        self.data_endpoint = sockets.bind(self.pull, self.data_endpoint, self._key_for(self.data_endpoint))
        peers = {e.dst_worker for e in self.plan.edges if e.src_worker == self.index}
        peers |= {e.src_worker for e in self.plan.edges if e.dst_worker == self.index}
        peers.discard(self.index)
        self._push: dict[int, zmq.Socket] = {}
        # Our data sockets to peers on the caller's machine, bound here (they connect to them).
        self.binds: dict[int, str] = {}
        settings = self.plan.settings
        local = self.plan.host_of(self.index) == LOCAL
        for peer in sorted(peers):
            sock = sockets.open_data_push(ctx)
            self._push[peer] = sock
            self.links[peer] = Link(sock, self.tracker, settings.batch_items, settings.batch_bytes)
            if not local and self.plan.host_of(peer) == LOCAL:
                any_port = self.data_endpoint.rsplit(":", 1)[0] + ":*"
                self.binds[peer] = sockets.bind(sock, any_port, self.key)
        # A second inbound socket, when needed. On the caller's machine: it reads what remote
        # peers send (items, credit), connecting out to their binds with CurveZMQ. On a daemon:
        # it reads peers of the same host over ipc (in the daemon's private run directory),
        # sparing them the encryption of the tcp socket.
        self.pull_side: zmq.Socket | None = None
        self.ipc_endpoint = ""
        mine = self.plan.host_of(self.index)
        if local and any(self.plan.host_of(p) != LOCAL for p in peers):
            self.pull_side = sockets.open_data_pull(ctx)
        elif not local and self.ctl_endpoint.startswith("ipc://"):
            if any(self.plan.host_of(p) == mine for p in peers):
                run_dir = os.path.dirname(self.ctl_endpoint[len("ipc://"):])
                self.pull_side = sockets.open_data_pull(ctx)
                self.ipc_endpoint = sockets.bind(self.pull_side, ipc_endpoint(run_dir, f"d{self.index}"))

    def _build(self) -> Dispatcher:
        self.collector = Collector(self.send_ctl, self.plan.settings.max_item_bytes)
        mine = self.plan.for_worker(self.index)
        channels: dict[tuple[str, str], InputChannel] = {}
        for comp in mine:
            for port in comp.inports:
                ch = InputChannel(port, f"{comp.name}.{port.name}", self.tracker)
                channels[(comp.name, port.name)] = ch
                self.channels.append(ch)
        inbound, writers, outbound = self._edges(channels)
        for comp in mine:
            activity = Activity(comp.label, self.tracker)
            self.runtimes.append(self._runtime(comp, channels, writers, activity))
        self._link_inline(writers)
        self._dispatcher = Dispatcher(
            inbound, outbound, self.tracker, self.plan.settings.max_item_bytes
        )
        return self._dispatcher

    def _edges(
        self, channels: dict[tuple[str, str], InputChannel]
    ) -> tuple[dict[int, tuple[InputChannel, str]], dict[int, Any], dict[int, RemoteEdge]]:
        """Inbound remote edges, and a writer for every edge this worker publishes on."""
        inbound: dict[int, tuple[InputChannel, str]] = {}
        writers: dict[int, Any] = {}
        outbound: dict[int, RemoteEdge] = {}
        me = self.index
        labels = {c.name: c.label for c in self.plan.components}
        for edge in self.plan.edges:
            if edge.dst_worker == me and edge.src_worker != me:
                ch = channels[(edge.dst_component, edge.dst_port)]
                link = self.links[edge.src_worker]
                ch.add_remote_publisher(edge, link.add_credit, link.send_credit)
                inbound[edge.edge_id] = (ch, edge.label)
            if edge.src_worker != me:
                continue
            if edge.inline:
                writers[edge.edge_id] = InlineEdge(edge.edge_id, edge.dst_port)
            elif edge.dst_worker == me:
                target = channels[(edge.dst_component, edge.dst_port)]
                writers[edge.edge_id] = LocalEdge(edge.edge_id, target, min(edge.slack, LOCAL_SLACK))
            else:
                writer = RemoteEdge(edge, self.links[edge.dst_worker], self.plan.settings.max_item_bytes,
                                    labels[edge.src_component])
                writers[edge.edge_id] = outbound[edge.edge_id] = writer
        return inbound, writers, outbound

    def _link_inline(self, writers: dict[int, Any]) -> None:
        by_name = {rt.plan.name: rt for rt in self.runtimes}
        for edge in self.plan.edges:
            if edge.inline and edge.src_worker == self.index:
                target = by_name[edge.dst_component]
                writers[edge.edge_id].connect(target)
                target.inline = True
        for rt in self.runtimes:
            for port in rt.outputs.values():
                port.bind_inline()
        # An inline consumer acts within its publisher's task: share that task's activity, so
        # a wait anywhere down an inline chain shows as the task's wait.
        for rt in self.runtimes:
            if not rt.inline:
                _share_activity(rt, rt.activity)

    def _runtime(
        self,
        comp: ComponentPlan,
        channels: dict[tuple[str, str], InputChannel],
        writers: dict[int, Any],
        activity: Activity,
    ) -> ComponentRuntime:
        outputs = {}
        for op in comp.outports:
            routes = [[writers[e] for e in r] for r in op.routes]
            if op.collect is not None:
                routes.append([CollectEdge(op.collect, self.collector, (comp.label, op.name))])
            outputs[op.name] = OutputPort(op.name, routes, activity)
        mine = {p.name: channels[(comp.name, p.name)] for p in comp.inports if not p.constant}
        return ComponentRuntime(comp, mine, outputs, activity, self._component_failed)

    # -- control --------------------------------------------------------------------------------

    def send_ctl(self, msg: control.Record) -> None:
        # Always through the asyncio socket, on the loop's thread: a second (sync) handle on the
        # same socket would consume the edge-triggered readiness of its FD, and a FINISH that
        # then arrived would never wake the pending receive.
        data = msg.encode()
        if threading.get_ident() == self._loop_thread:
            self.ctl.send(data)
        else:  # a component logging from a thread of its own
            self._loop.call_soon_threadsafe(self.ctl.send, data)

    def _forward_log(self, record: logging.LogRecord, component: Any, text: str) -> None:
        self.send_ctl(
            control.Log(
                level=record.levelname, component=component, message=text, logger=record.name,
                levelno=record.levelno, created=record.created,
            )
        )

    def report_error(self, error: CascataError) -> None:
        if self._failed:
            return
        self._failed = True
        self._restore_output()  # what was printed before the error, first
        try:
            payload = pickle.dumps(error)
        except Exception:
            payload = pickle.dumps(CascataError(str(error)))
        self.send_ctl(control.Error(error=payload))

    async def _control_loop(self) -> None:
        try:
            await self._serve_control()
        except Exception as exc:  # a dead control loop would leave this worker deaf to FINISH
            if self._finish is not None and not self._finish.done():
                self._finish.set_result(control.Abort())
            self.report_error(ProtocolError(f"{self.name}: control channel failed: {exc!r}"))

    async def _serve_control(self) -> None:
        while True:
            msg = control.decode(await self.ctl.recv())
            if isinstance(msg, control.Probe):
                self.send_ctl(self.snapshot(msg.probe))
            elif isinstance(msg, control.StatsRequest):
                self.send_ctl(control.StatsReply(stats=self._stats(), host=HOST, pid=os.getpid()))
            elif isinstance(msg, control.CollectAck):
                self.collector.acknowledge(msg.count, msg.nbytes)
            elif isinstance(msg, control.EndAll):
                for ch in self.channels:
                    ch.force_end()
            elif isinstance(msg, control.Finish | control.Abort):
                if self._finish is not None and not self._finish.done():
                    self._finish.set_result(msg)
                return

    def snapshot(self, probe: int) -> control.Snapshot:
        """Counters for quiescence detection, and who waits on what, for deadlock reports."""
        idle = all(rt.activity.idle() for rt in self.runtimes)
        idle = idle and not any(link.pending() for link in self.links.values())
        idle = idle and not self.collector.pending()
        waits = []
        for act in {id(rt.activity): rt.activity for rt in self.runtimes}.values():
            if act.state in (WAIT_IN, WAIT_OUT):
                target = getattr(act.on, "full_name", None) or getattr(act.on, "label", "?")
                waits.append([self._waiting_label(act), act.state, target])
        tracker = self.tracker
        active = [rt.plan.label for rt in self.runtimes if not rt.inline and rt.activity.state != DONE]
        return control.Snapshot(
            probe, tracker.events, tracker.msgs_sent, tracker.msgs_received, idle, waits, active
        )

    def _waiting_label(self, act: Activity) -> str:
        """Who really waits: an inline consumer the task was firing when it stopped, shares the
        task's activity, so the task's own label would name its publisher instead."""
        task = self._hosts.get(id(act))
        inner = awaiting_component(task.get_coro()) if task is not None else None
        return f"{inner[0]}@{inner[1]}" if inner else act.label

    # -- running --------------------------------------------------------------------------------

    async def _read_data(self, dispatcher: Dispatcher, sock: zmq.Socket | None = None) -> None:
        """Drain the data socket whenever it signals, in the loop's reader callback itself:
        no task wakes up per message batch (a credit cycle took 4 loop turns with a reader
        task). Returns only when reading failed, after reporting it."""
        loop = asyncio.get_running_loop()
        sock = sock or self.pull
        failed: asyncio.Future[CascataError] = loop.create_future()
        fd = sock.getsockopt(zmq.FD)

        def readable() -> None:
            if failed.done():
                return
            try:
                if not self._drain(sock, dispatcher):
                    loop.call_soon(readable)  # more is waiting: let the components run first
            except CascataError as exc:
                failed.set_result(exc)

        loop.add_reader(fd, readable)
        loop.call_soon(readable)  # what arrived before the reader was installed
        try:
            self.report_error(await failed)
        finally:
            loop.remove_reader(fd)

    def _drain(self, sock: zmq.Socket, dispatcher: Dispatcher) -> bool:
        """Handle up to READ_BATCH waiting messages; True when the socket is empty."""
        handle = dispatcher.handle
        for _ in range(READ_BATCH):
            # The socket's FD is edge-triggered: read while EVENTS says a message waits before
            # waiting on it again (asking is cheaper than a receive that raises zmq.Again).
            if not sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                return True
            try:
                frames = sock.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                # EVENTS can promise a message the receive then does not find: seen once per
                # run with 8 MB arrays over tcp + CurveZMQ between hosts (tests/multihost). Look
                # again on the next loop turn rather than trust the edge-triggered FD alone.
                return False
            handle([f.buffer for f in frames])
        return False

    async def _run_component(self, rt: ComponentRuntime) -> None:
        try:
            await rt.run()
        except InlineAbort:
            pass  # an inline consumer failed and reported it
        except USER_ERRORS as exc:
            self._component_failed(rt, exc)

    def _component_failed(self, rt: ComponentRuntime, exc: BaseException) -> None:
        if isinstance(exc, UserExit):
            exc = exc.original
        if isinstance(exc, CascataError):
            self.report_error(exc)
            return
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.report_error(
            ComponentError(rt.plan.label, self.name, type(exc).__name__, _exc_text(exc), tb)
        )

    async def run(self, ctx: zmq.Context) -> None:
        self._open_sockets(ctx)
        self._loop_thread = threading.get_ident()
        self._loop = loop = asyncio.get_running_loop()
        use_forwarding(self._forward_log, self.plan.settings.log_level)
        if self.plan.host_of(self.index) != LOCAL:  # no terminal of the caller's here
            self._restore_output = forward_output(self.send_ctl)
        self._finish = loop.create_future()
        try:
            dispatcher = self._build()
        except Exception as exc:
            self.report_error(ProtocolError(f"{self.name} could not build its plan: {exc}"))
            await self._wait_stop()
            return
        self._sends = watch_sends(self.plan, self.index, self.name, self.runtimes, self.report_error)
        self.send_ctl(control.Ready(self.data_endpoint, os.getpid(), self.binds, self.ipc_endpoint))
        go = control.decode(await self.ctl.recv())
        if not isinstance(go, control.Go):
            return
        self._connect_peers(go)
        for rt in self.runtimes:
            rt.activity.restart_clock()
        tasks = [loop.create_task(self._control_loop()), loop.create_task(self._read_data(dispatcher))]
        if self.pull_side is not None:
            tasks.append(loop.create_task(self._read_data(dispatcher, self.pull_side)))
        comps = self._start_components(loop)
        every = asyncio.gather(*comps)
        await asyncio.wait([every, self._finish], return_when=asyncio.FIRST_COMPLETED)
        if every.done() and not self._failed:
            self._complete_work()
        if every.done() and not self._failed:
            for link in self.links.values():
                link.flush()
            self.collector.flush()  # before Done, on the same socket: the caller has every item
            self._restore_output()  # likewise every line printed
            done = control.Done(
                stats=self._stats(),
                host=HOST,
                pid=os.getpid(),
                sent=self._dispatcher.sent(),
                ended=dict(self._dispatcher.ended),
            )
            self.send_ctl(done)
        outcome = await self._finish
        for t in comps + tasks:
            t.cancel()
        # ``every`` too: a gather whose children were cancelled holds a CancelledError that,
        # never retrieved, asyncio would print when the run is aborted (a timeout, a failure).
        await asyncio.gather(every, *comps, *tasks, return_exceptions=True)
        if isinstance(outcome, control.Finish):
            for link in self.links.values():
                link.flush()
        self._restore_output()

    def _start_components(self, loop: asyncio.AbstractEventLoop) -> list[asyncio.Task[None]]:
        """A task per component that is not inline, remembered by the activity it reports
        through (a deadlock report reads who waits off the task, see _waiting_label)."""
        comps = []
        for rt in self.runtimes:
            if not rt.inline:
                comps.append(loop.create_task(self._run_component(rt)))
                self._hosts[id(rt.activity)] = comps[-1]
        return comps

    def _complete_work(self) -> None:
        """Before DONE: what the components started completes (threads, queue feeders, files;
        see ending.complete_work). It blocks the loop on purpose: probes stay unanswered, so
        the coordinator cannot judge the graph quiescent while items are still being handed
        over; heartbeats go on from their thread."""
        # A queue's feeder handing nothing over for the liveness limit: nobody reads the queue
        # (a plain interpreter would wait forever).
        stuck = complete_work(self.plan.settings.liveness_limit)
        if stuck is not None:
            self.report_error(
                WorkerLostError(
                    self.name, os.getpid(), f"could not finish: {stuck}",
                    [rt.plan.label for rt in self.runtimes], hint=UNREAD_QUEUE_HINT,
                )
            )
    def _connect_peers(self, go: control.Go) -> None:
        """Connect to every peer after all have bound (READY): a connect before the bind would
        cost a reconnect interval."""
        for peer, sock in self._push.items():
            if peer not in self.binds:
                endpoint = go.peers[peer]
                if self._same_host(peer) and go.ipc.get(peer):
                    endpoint = go.ipc[peer]  # a peer of this daemon: ipc, no encryption
                sockets.connect(sock, endpoint, self._key_for(endpoint))
        if self.pull_side is not None and self.plan.host_of(self.index) == LOCAL:
            for binds in go.binds.values():
                if self.index in binds:
                    sockets.connect(self.pull_side, binds[self.index], self.key)

    def _same_host(self, peer: int) -> bool:
        mine = self.plan.host_of(self.index)
        return mine != LOCAL and self.plan.host_of(peer) == mine

    def _key_for(self, endpoint: str) -> Any:
        return self.key if endpoint.startswith("tcp://") else None

    async def _wait_stop(self) -> None:
        while True:
            if isinstance(control.decode(await self.ctl.recv()), control.Finish | control.Abort):
                return

    def _stats(self) -> dict[str, Any]:
        """Per component counters and times; an inline consumer's time is its host task's."""
        stats = {}
        for rt in self.runtimes:
            busy, blocked, waiting = rt.activity.times()
            stats[rt.plan.name] = {
                "firings": rt.firings,
                "received": {n: ch.received for n, ch in rt.channels.items()},
                "discarded": {n: ch.discarded for n, ch in rt.channels.items()},
                "sent": {n: p.sent for n, p in rt.outputs.items()},
                "busy": busy,
                "blocked": blocked,
                "waiting": waiting,
                "inline_in": rt.activity.label if rt.inline else None,
                "buffered": sum(ch.statistics()["buffered"] for ch in rt.channels.values()),
                "capacity": sum(ch.capacity for ch in rt.channels.values()),
            }
        return stats

    def close(self) -> None:
        sends = getattr(self, "_sends", None)
        if sends is not None:
            sends.uninstall()
        extra = [self.pull_side] if self.pull_side is not None else []
        for sock in [self.ctl, self.pull, *extra, *self._push.values()]:
            sockets.close(sock)


def _exc_text(exc: BaseException) -> str:
    """``str(exc)``, or a stand-in when the exception's own ``__str__`` raises: the component's
    error must still be reported (an error here once left the run hanging)."""
    try:
        return str(exc)
    except Exception as inner:
        return f"<str() of the exception failed: {type(inner).__name__}: {inner}>"


def _share_activity(rt: ComponentRuntime, activity: Activity) -> None:
    for port in rt.outputs.values():
        for route in port._routes:
            for writer in route:
                if isinstance(writer, InlineEdge) and writer.target.activity is not activity:
                    writer.target.set_activity(activity)
                    _share_activity(writer.target, activity)


def _heartbeat(
    ctx: zmq.Context, endpoint: str, index: int, parent: int, interval: float, stop: threading.Event
) -> None:
    """Tell the coordinator this process lives (from a thread, so a component that blocks the
    event loop is not mistaken for a frozen worker); exit if the process that started us is gone."""
    sock = sockets.open_control_dealer(ctx, control.WorkerId(index).heartbeat)
    sockets.connect(sock, endpoint)
    try:
        beat = control.Heartbeat(worker=index).encode()
        while not stop.wait(interval):
            if os.getppid() != parent:
                # The caller died: nobody will collect our results, nor remove the run's
                # directory; the first worker to notice removes it, then all exit.
                if endpoint.startswith("ipc://"):
                    remove_run_dir(os.path.dirname(endpoint[len("ipc://") :]))
                abandon_process(CALLER_GONE_EXIT)
            sock.send(beat, flags=zmq.NOBLOCK)
    except zmq.ZMQError:
        pass
    finally:
        sockets.close(sock)


def worker_main(
    plan: Plan, index: int, ctl_endpoint: str, data_endpoint: str, parent: int, key: Any = None
) -> None:
    """Entry point of a worker process (forked by the coordinator, or started by a daemon).

    With a cluster ``key`` the tcp data sockets are CurveZMQ; a worker that listens on tcp runs
    the ZAP authenticator (a thread) on its context before it binds."""
    ctx = zmq.Context()
    authenticator = None
    if key is not None and data_endpoint.startswith("tcp://"):
        from ..transport.auth import start_authenticator

        authenticator = start_authenticator(ctx, key)
    stop = threading.Event()
    interval = plan.settings.heartbeat_interval
    beat = threading.Thread(
        target=_heartbeat, args=(ctx, ctl_endpoint, index, parent, interval, stop), daemon=True
    )
    beat.start()
    worker = Worker(plan, index, ctl_endpoint, data_endpoint, key)
    try:
        profile_dir = os.environ.get("CASCATA_PROFILE_DIR")
        if profile_dir:  # for tuning: one cProfile file per worker
            import cProfile

            path = os.path.join(profile_dir, f"worker-{index}.prof")
            cProfile.runctx("asyncio.run(worker.run(ctx))", globals(), locals(), path)
        else:
            asyncio.run(worker.run(ctx))
    finally:
        stop.set()
        beat.join(timeout=2 * interval + 1)
        worker.close()
        if authenticator is not None:
            authenticator.stop()
        ctx.term()
