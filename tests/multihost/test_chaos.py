"""Case 7 of the fault suite: a seeded chaos loop over two namespace hosts.

Each run streams a ledger chain across two real daemons (src and sink on host A, mid on host B,
so data crosses between the hosts both ways) and, once every component has handled some items
(progress flags), injects one fault drawn at random: a remote worker killed or stopped for a
while, a host's link cut for a while, the route between the worker hosts blackholed for a
while, the data connections between them reset, a daemon killed or stopped for a while, or
nothing. Whatever happens, the run must either return with a perfect ledger or raise the cascata
error that names the fault within a deadline; what did arrive is never wrong (each item once,
intact, in order); no worker process is left on either host; and the daemons (restarted where
the fault killed one) serve the next run.

``CASCATA_CHAOS_SEED`` replays a loop (every failure message names the seed and the run; the
default is one fixed seed, ``random`` draws a fresh one);
``CASCATA_CHAOS_RUNS`` sets the number of runs (10 by default), ``CASCATA_CHAOS_FAULTS`` the kinds
of fault drawn (comma-separated names of EXPECTED; all by default). The observed runs are printed
(``pytest -s``) and appended to ``CASCATA_FAULT_TIMES`` when set.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import defaultdict
from dataclasses import dataclass

import pytest

from cascata import HostLostError, ProtocolError, WorkerLostError
from cascata._plan import HOST_TIMEOUT, LIVENESS_LIMIT
from cascata._run.coordinator import TRANSIT_TIMEOUT
from tests.faults.graphs import chain, started
from tests.faults.ledger import Fault, check, received
from tests.faults.tools import FAULT_DEADLINE, wait_flag
from tests.helpers import poll_for

pytestmark = pytest.mark.slow

RUNS = int(os.environ.get("CASCATA_CHAOS_RUNS", "10"))
# CI replays one fixed loop, so a red CI names a sequence anyone can replay; CASCATA_CHAOS_SEED
# gives another seed, or 'random' for a fresh one each time (printed with every failure).
DEFAULT_SEED = 20261130
_SEED_TEXT = os.environ.get("CASCATA_CHAOS_SEED", "").strip()
SEED = (
    random.SystemRandom().randrange(10**6) if _SEED_TEXT == "random"
    else int(_SEED_TEXT or DEFAULT_SEED)
)
ROLES = ("src", "mid", "sink")
# Faults undone after their duration (the process continued, the link or route restored).
LASTING = ("stall", "cut", "blackhole", "stall-daemon")
# Items per run, one every millisecond or so: a stream of about two seconds.
ITEMS = 1500
# Items before the end from which a fault counts as hitting the stream's end.
ENDING = 40
# The errors a fault may end a run with: each names what was lost.
NAMED = (WorkerLostError, HostLostError, ProtocolError)
# What each fault may end in ("ok": a perfect ledger): the error must name the real cause. A
# kill ends in "ok" only as the stream ends (the worker or daemon may have done its part).
EXPECTED = {
    "none": {"ok"},
    "kill": {"ok", "WorkerLostError"},
    "stall": {"ok", "WorkerLostError"},
    "cut": {"ok", "HostLostError"},
    "blackhole": {"ok", "ProtocolError"},
    "reset": {"ok", "ProtocolError"},
    "reset-control": {"ok", "HostLostError"},
    "kill-daemon": {"ok", "HostLostError"},
    "stall-daemon": {"ok", "HostLostError"},
}
# The faults drawn from (CASCATA_CHAOS_FAULTS, comma-separated, narrows them down).
KINDS = sorted(k for k in os.environ.get("CASCATA_CHAOS_FAULTS", ",".join(EXPECTED)).split(",") if k)
# The share of runs with two faults at once.
DOUBLE = 0.2
# Seconds a run may last in all before cascata's own timeout stops it: a hang shows as a
# TimeoutError naming the seed, not as a test killed by pytest-timeout.
RUN_LIMIT = 60.0
# Seconds, after the run, for the workers on both hosts to be gone.
CLEAN_UP = 10.0


@dataclass
class Chaos:
    """One run's fault: ``kind``, whom it hits (a role or a host index), for how long (s)."""

    kind: str
    role: str = ""
    host: int = 0
    duration: float = 0.0
    at: int = 0  # the item at which every component raises its progress flag

    @classmethod
    def draw(cls, rng: random.Random) -> list[Chaos]:
        """One run's faults: mostly one, one run in five two at once (the second hits while
        the first is being detected or the run is being stopped). Early in the stream mostly;
        one run in four as it ends (end of stream, the quiescence probes and FINISH are in
        flight then)."""
        at = rng.randrange(ITEMS - ENDING, ITEMS) if rng.random() < 0.25 else rng.randrange(20, 300)
        kinds = rng.sample(KINDS, min(len(KINDS), 2 if rng.random() < DOUBLE else 1))  # two differ
        return [cls(kind, rng.choice(ROLES), rng.randrange(2), round(rng.uniform(0.3, 6.0), 2), at)
                for kind in kinds]

    def __str__(self) -> str:
        target = self.role if self.kind in ("kill", "stall") else f"host {self.host}"
        target = "" if self.kind in ("none", "blackhole", "reset") else target
        lasting = f" for {self.duration} s" if self.kind in LASTING else ""
        return f"{self.kind} {target}{lasting}".replace("  ", " ").strip()

    def expected(self) -> set[str]:
        if self.kind in ("kill", "kill-daemon") and self.at < ITEMS - ENDING:
            return EXPECTED[self.kind] - {"ok"}
        return EXPECTED[self.kind]

    def bound(self) -> float:
        """Seconds from the fault to the end of the run: the fault's own length where it is
        undone, then the detection that fits it, then the stop ladder."""
        if self.kind == "stall":
            return min(self.duration, LIVENESS_LIMIT) + FAULT_DEADLINE
        if self.kind == "stall-daemon":
            return min(self.duration, HOST_TIMEOUT) + FAULT_DEADLINE
        if self.kind == "cut":
            return min(self.duration, HOST_TIMEOUT) + TRANSIT_TIMEOUT + FAULT_DEADLINE
        if self.kind == "blackhole":
            return self.duration + TRANSIT_TIMEOUT + FAULT_DEADLINE
        return FAULT_DEADLINE


def describe(faults: list[Chaos]) -> str:
    return " + ".join(map(str, faults)) + f" at #{faults[0].at}"


def expected(faults: list[Chaos]) -> set[str]:
    """What a run with these faults may end in: an error any of them names; "ok" only where
    every one of them allows it."""
    allowed = set().union(*(c.expected() for c in faults))
    return allowed if all("ok" in c.expected() for c in faults) else allowed - {"ok"}


def prefix_only(ledger: str) -> None:
    """What a failed run delivered is never wrong: at every sink, each publisher's items
    0..k-1, each once, intact, in order (a lost item stops the run before anything after it
    is delivered)."""
    seqs: dict[tuple[str, str], list[int]] = defaultdict(list)
    for pub, seq, ok, tag in received(ledger):
        assert ok, f"{tag} got {pub} #{seq} damaged"
        seqs[(tag, pub)].append(seq)
    for (tag, pub), got in seqs.items():
        assert got == list(range(len(got))), f"{tag} got {pub} out of order or with gaps: {got[:20]}"


class Loop:
    """The hosts, their daemons, and what one chaos run does to them."""

    def __init__(self, hosts, host_daemons, key_file, tmp_path) -> None:
        self.hosts = hosts
        self.start_daemons = host_daemons
        self.daemons = host_daemons(hosts)
        self.key_file = key_file
        self.tmp_path = tmp_path

    @property
    def addresses(self) -> list[str]:
        return [d.address for d in self.daemons]

    def run(self, index: int, faults: list[Chaos]) -> dict:
        ledger, flags = (self.tmp_path / f"{what}{index}" for what in ("ledger", "flags"))
        ledger.mkdir()
        flags.mkdir()
        progress = {r: Fault(at=faults[0].at, flag_dir=str(flags), name=r) for r in ROLES}
        g = chain(str(ledger), ITEMS, delay=0.001, faults=progress)
        a, b = self.addresses
        undo: list[threading.Timer] = []
        outcome, error = "ok", None
        with started(g, None, workers=[a, b], key_file=self.key_file, timeout=RUN_LIMIT,
                     pin={"src": a, "mid": b, "sink": a}):
            pids = {r: wait_flag(str(flags), r, timeout=30) for r in ROLES}
            begun = time.monotonic()
            for chaos in faults:
                # A reset must find a connection to kill, unless an earlier fault of this run
                # or the stream's end may have taken them all down already.
                strict = chaos is faults[0] and chaos.at < ITEMS - ENDING
                self.inject(chaos, pids, undo, strict)
            try:
                g.join()
            except NAMED as exc:
                outcome, error = type(exc).__name__, exc
            elapsed = time.monotonic() - begun
        for timer in undo:
            timer.join()
        for chaos in faults:
            if chaos.kind == "stall":
                _signal(pids[chaos.role], signal.SIGCONT)
        if error is None:
            check(ledger, {"p": ITEMS})
        else:
            prefix_only(str(ledger))
        row = {"run": index, "fault": describe(faults), "outcome": outcome,
               "seconds": round(elapsed, 2), "error": str(error).splitlines()[0] if error else ""}
        assert outcome in expected(faults), f"{outcome} does not name the fault: {error}"
        bound = max(c.bound() for c in faults)
        assert elapsed <= bound, f"ended {elapsed:.1f} s after the fault, over {bound:.0f} s"
        return row

    def inject(
        self, chaos: Chaos, pids: dict[str, int], undo: list[threading.Timer], strict: bool
    ) -> None:
        """Do ``chaos`` (``strict``: a reset must kill a connection)."""
        host = self.hosts[chaos.host]
        cluster = host.cluster

        def later(action) -> None:
            timer = threading.Timer(chaos.duration, action)
            timer.start()
            undo.append(timer)

        if chaos.kind == "kill":
            _signal(pids[chaos.role], signal.SIGKILL)
        elif chaos.kind == "stall":
            pid = pids[chaos.role]
            _signal(pid, signal.SIGSTOP)
            later(lambda: _signal(pid, signal.SIGCONT))
        elif chaos.kind == "cut":
            host.cut()
            later(host.restore)
        elif chaos.kind == "blackhole":
            cluster.blackhole(*self.hosts)
            later(cluster.unblackhole)
        elif chaos.kind == "reset":
            done = self.hosts[0].run(["ss", "-K", "dst", self.hosts[1].address])
            assert done.returncode == 0 and (len(done.stdout.splitlines()) > 1 or not strict), done
        elif chaos.kind == "reset-control":
            # The caller's own connection to one daemon, in the root namespace where it runs.
            port = self.daemons[chaos.host].address.rpartition(":")[2]
            done = subprocess.run(["ss", "-K", "dst", host.address, "dport", "=", f":{port}"],
                                  capture_output=True, text=True, timeout=30)
            assert done.returncode == 0 and (len(done.stdout.splitlines()) > 1 or not strict), done
        elif chaos.kind == "kill-daemon":
            _signal(self.daemons[chaos.host].pid, signal.SIGKILL)
        elif chaos.kind == "stall-daemon":
            pid = self.daemons[chaos.host].pid
            _signal(pid, signal.SIGSTOP)
            later(lambda: _signal(pid, signal.SIGCONT))

    def settle(self, faults: list[Chaos]) -> None:
        """Wait until no worker is left on either host; restart a daemon a fault killed."""
        killed = {c.host for c in faults if c.kind == "kill-daemon"}
        for i in killed:
            self.daemons[i].proc.wait(CLEAN_UP)
        for host, daemon in zip(self.hosts, self.daemons, strict=True):
            keep = daemon.service_pids()
            poll_for(lambda h=host, k=keep: set(h.pids()) <= k, timeout=CLEAN_UP)
        for i, daemon in enumerate(self.daemons):
            if daemon.proc.poll() is not None:
                assert i in killed, f"daemon {i} is down"
                (self.daemons[i],) = self.start_daemons([self.hosts[i]])


def _signal(pid: int, sig: int) -> None:
    """Signal a worker that may have ended already (a fault as the stream ends)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _report(seed: int, rows: list[dict]) -> None:
    print(f"\nchaos loop, seed {seed}:")
    for row in rows:
        print(f"  run {row['run']:2}: {row['fault']:<44} -> {row['outcome']:<16} "
              f"{row['seconds']:6.2f} s  {row['error'][:90]}")
    path = os.environ.get("CASCATA_FAULT_TIMES")
    if path:
        with open(path, "a") as f:
            for row in rows:
                f.write(json.dumps({"case": f"7: chaos {row['fault']} -> {row['outcome']}",
                                    "seconds": row["seconds"]}) + "\n")


@pytest.mark.timeout(60 + 40 * RUNS)
def test_chaos_loop_over_two_hosts(make_hosts, host_daemons, key_file, tmp_path):
    rng = random.Random(SEED)
    loop = Loop(make_hosts(2), host_daemons, key_file, tmp_path)
    rows: list[dict] = []
    try:
        for index in range(RUNS):
            faults = Chaos.draw(rng)
            try:
                rows.append(loop.run(index, faults))
                loop.settle(faults)
            except BaseException as exc:
                raise AssertionError(
                    f"chaos seed {SEED} (CASCATA_CHAOS_SEED={SEED}), run {index}, {describe(faults)}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        # The daemons still serve a plain run after the last fault.
        ledger = tmp_path / "after"
        ledger.mkdir()
        chain(str(ledger), 100).run(workers=loop.addresses, key_file=key_file)
        check(ledger, {"p": 100})
    finally:
        _report(SEED, rows)
