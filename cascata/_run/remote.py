"""The coordinator's side of a run's remote workers: launch on daemons, relay, host liveness.

The coordinator keeps supervising workers through handles and control records exactly as for
local ones; this module adds what only remote hosts need: the plan shipped to each daemon, the
daemons' own records (STARTED, EXITED, BEAT, RELEASED, REFUSED), heartbeats both ways, and
:class:`~cascata.errors.HostLostError` when a daemon falls silent.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from typing import Any

import dill
import zmq

from .._plan import ComponentPlan, Plan
from ..errors import HostLostError, PlanRefusedError, SerializationError
from ..transport import control
from ..worker.liveness import ProcessSample
from .hosts import HostLink
from .launch import RemoteWorkerHandle

# Seconds the coordinator waits for the daemons to confirm every worker exited, beyond the
# stop ladder's own graces.
RELEASE_SLACK = 2.0


class RemoteWorkers:
    """The daemons of one run and the handles of the workers they host."""

    def __init__(self, plan: Plan, links: list[HostLink]) -> None:
        self.plan = plan
        self.links = {link.address: link for link in links}
        self.handles = {
            i: RemoteWorkerHandle(i, self.links[plan.host_of(i)])
            for i in range(plan.num_workers)
            if plan.host_of(i) in self.links
        }

    def launch(self) -> None:
        """Ship the plan to every daemon with the indices of the workers it must start.

        Code travels with the plan: dill pickles importable functions by reference and those of
        ``__main__`` (a script, a notebook) by value, with the globals they use (``recurse``)."""
        settings = self.plan.settings
        for address, link in self.links.items():
            workers = [i for i, h in self.handles.items() if h.host == address]
            payload = ship(self.plan, workers, address)
            link.send(
                control.Launch(
                    self.plan.run_id, workers, payload, settings.heartbeat_interval,
                    settings.host_timeout, settings.term_grace, link.nonce,
                )
            )

    def register(self, poller: zmq.Poller) -> None:
        for link in self.links.values():
            poller.register(link.sock, zmq.POLLIN)

    def drain(self, link: HostLink, out: list[tuple[int, control.Record]]) -> None:
        """Read what ``link`` has: workers' messages go to ``out``; the daemon's are handled."""
        while True:
            try:
                frames = link.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            link.last_seen = time.monotonic()
            if len(frames) == 2:
                who = control.WorkerId.parse(frames[0]).index
                if who in self.handles and self.handles[who].host == link.address:
                    out.append((who, control.decode(frames[1])))
                continue
            self._host_record(link, control.decode(frames[-1]))

    def _host_record(self, link: HostLink, record: control.Record) -> None:
        if isinstance(record, control.Started):
            for i, pid in record.pids.items():
                self.handles[i].pid = pid
        elif isinstance(record, control.Exited):
            handle = self.handles.get(record.worker)
            if handle is not None and handle.status is None:
                handle.status = record.status
        elif isinstance(record, control.Beat):
            for i, (ticks, state) in record.cpu.items():
                if i in self.handles:
                    self.handles[i].last_sample = ProcessSample(ticks, state)
        elif isinstance(record, control.Released):
            link.released = True
        elif isinstance(record, control.Abandoned):
            raise HostLostError(
                link.address,
                f"its daemon heard nothing from this process for {record.silent:.1f} s and "
                "stopped the run's workers there (this process was stopped or blocked, or the "
                "network between us was cut)",
            )
        elif isinstance(record, control.Refused):
            if "shutting down" in record.reason:
                link.released = True
                raise HostLostError(link.address, record.reason)
            raise PlanRefusedError(link.address, record.reason)

    def check(self) -> None:
        """Send heartbeats that are due; HostLostError for a daemon silent too long."""
        now = time.monotonic()
        settings = self.plan.settings
        for link in self.links.values():
            if now - link.last_sent >= settings.heartbeat_interval:
                link.send(control.Beat())
            if link.sock.poll(0):
                # Read first, judge after: this process may itself have been stopped, and what
                # waits here (an ABANDONED, a late beat) says more than the silence before it.
                continue
            if link.dropped():
                raise HostLostError(
                    link.address,
                    "the connection to its daemon broke (reset on the way, or the daemon "
                    "exited); control messages in it may be lost, so the run cannot go on",
                )
            silent = now - link.last_seen
            if silent > settings.host_timeout:
                link.released = True  # nothing to wait for from a lost daemon when stopping
                raise HostLostError(
                    link.address,
                    f"no word from its daemon for {silent:.1f} s (the host died, the network "
                    "between us is cut, or the daemon was stopped)",
                )

    def release(self, grace: float) -> None:
        """Ask every daemon to stop the run's workers and wait (bounded) until they confirm."""
        for link in self.links.values():
            try:
                link.send(control.Release(grace))
            except zmq.ZMQError:
                link.released = True
        settings = self.plan.settings
        deadline = time.monotonic() + grace + settings.term_grace + RELEASE_SLACK
        poller = zmq.Poller()
        self.register(poller)
        while not all(link.released for link in self.links.values()):
            for link in self.links.values():
                if time.monotonic() - link.last_seen > settings.host_timeout:
                    link.released = True  # lost (dead, stopped, cut off): nothing will come
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ready = dict(poller.poll(min(left, 0.05) * 1000))
            for link in self.links.values():
                if link.sock in ready:
                    try:
                        self.drain(link, [])
                    except (HostLostError, PlanRefusedError):
                        link.released = True

    def close(self) -> None:
        for link in self.links.values():
            link.close()


def show_output(record: control.Output, host: str) -> None:
    """Print what a worker on ``host`` printed, on the same stream here, each line tagged with
    the host (a last line without its newline gets one)."""
    stream = sys.stderr if record.stream == "stderr" else sys.stdout
    text = "".join(f"[{host}] {line}" for line in record.text.splitlines(keepends=True))
    stream.write(text if text.endswith("\n") else text + "\n")
    stream.flush()


def plan_for(plan: Plan, workers: list[int]) -> Plan:
    """The plan as the daemon running ``workers`` gets it: the other workers' components keep
    their names and wiring but not their code or values (a local sink may hold a queue, a lock
    or an open file that only works in this machine's processes, and need not travel)."""
    keep = set(workers)

    def bare(c: ComponentPlan) -> ComponentPlan:
        if c.worker in keep:
            return c
        ports = tuple(replace(p, initial=None) for p in c.inports)
        return replace(c, runner=None, persists=(), inports=ports)

    return replace(plan, components=tuple(bare(c) for c in plan.components))


def ship(plan: Plan, workers: list[int], address: str) -> bytes:
    """The pickled plan for the daemon at ``address``; a SerializationError naming the component
    and the value that cannot travel there."""
    part = plan_for(plan, workers)
    try:
        return dill.dumps(part, recurse=True)
    except Exception as exc:
        raise _what_cannot_travel(part, set(workers), address, exc) from exc


def _pieces(c: ComponentPlan) -> list[tuple[str, str, Any]]:
    """(what, name, value) of everything of ``c`` that travels: code, persist factories and
    their arguments, port values."""
    out: list[tuple[str, str, Any]] = [("its code", "runner", c.runner)]
    for name, factory, args, kwargs in c.persists:
        out += [(f"persist '{name}'", name, v) for v in (factory, *args, *kwargs.values())]
    out += [(f"the value of port '{p.name}'", p.name, p.initial) for p in c.inports]
    return out


def _what_cannot_travel(
    plan: Plan, workers: set[int], address: str, exc: Exception
) -> SerializationError:
    for c in plan.components:
        if c.worker not in workers:
            continue
        for what, name, value in _pieces(c):
            try:
                dill.dumps(value, recurse=True)
            except Exception as err:
                kind = type(value).__name__
                return SerializationError(
                    c.label, name, kind, str(err),
                    f"component {c.label} cannot travel to host {address}: {what} holds a "
                    f"{kind} that cannot be pickled ({type(err).__name__}: {err}). Objects that "
                    "only work between processes of one machine (queues, locks, open files) "
                    "need the component on a local worker: add 'local' to workers=[...] and pin "
                    f"{{'{c.name}': 'local'}}; otherwise pass something picklable.",
                )
    return SerializationError("", "", type(exc).__name__, str(exc),
                              f"the plan cannot travel to host {address}: {type(exc).__name__}: {exc}")
