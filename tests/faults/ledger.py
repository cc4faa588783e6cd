"""Ledger components and progress flags for the fault suite.

Sources send ``(publisher, seq, payload)``; stages pass items on; sinks append what they receive,
one line per item, to a file in a ledger directory (``O_APPEND`` writes of one short line are
atomic, so group members may share a directory). :func:`check` then says whether the run
delivered exactly what was sent: the same multiset of ``(publisher, seq)``, each payload intact,
and ``seq`` increasing per publisher at every sink.

A :class:`Fault` given to a component as a constant says what it does at which item: write a
progress flag (a file holding the worker's pid, so a test injects a fault mid-stream, never
before the stream started, and knows which process to hit), or raise. Everything here is
defined at module level so worker processes, local or remote, find it by name.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cascata import component, inport, outport

# Bytes of a "bytes" payload: above the plain-value size, below the out-of-band threshold.
BYTES_PAYLOAD = 2000
# Float64 elements of an "array" payload (128 KiB: travels as an out-of-band frame).
ARRAY_PAYLOAD = 16 * 1024
# Float64 elements of a "mib" payload (1 MiB).
MIB_PAYLOAD = 128 * 1024
LAST = -1  # Fault.at: after the last item (sources) or at the last item (stages, sinks)


def payload(kind: str, seq: int) -> Any:
    """The payload of item ``seq``: derived from it, so a sink can check it arrived intact."""
    if kind == "int":
        return seq * 7
    if kind == "record":
        return {"seq": seq, "name": f"item-{seq}", "ok": True}
    if kind == "bytes":
        return seq.to_bytes(8, "little") * (BYTES_PAYLOAD // 8)
    if kind in ("array", "mib"):
        import numpy

        return numpy.full(ARRAY_PAYLOAD if kind == "array" else MIB_PAYLOAD, float(seq))
    raise ValueError(f"unknown payload kind {kind!r}")


def intact(kind: str, seq: int, value: Any) -> bool:
    expected = payload(kind, seq)
    if kind in ("array", "mib"):
        return bool((value == expected).all()) and value.shape == expected.shape
    return value == expected


class NotPicklableArgs(Exception):
    """An exception pickle can write but not rebuild: its constructor needs two arguments."""

    def __init__(self, what: str, code: int) -> None:
        super().__init__(f"{what} (code {code})")
        self.code = code


class HoldsLock(Exception):
    """An exception pickle cannot write at all: it holds a lock."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.lock = threading.Lock()


class BadStr(Exception):
    """An exception whose ``str()`` itself raises."""

    def __str__(self) -> str:
        raise RuntimeError("__str__ of BadStr failed")


def _raise(how: str, where: str) -> None:
    if how == "raise":
        raise ValueError(f"injected fault in {where}")
    if how == "unpicklable-args":
        raise NotPicklableArgs(f"injected fault in {where}", 7)
    if how == "lock":
        raise HoldsLock(f"injected fault in {where}")
    if how == "bad-str":
        raise BadStr()
    raise AssertionError(f"unknown fault {how!r}")


@dataclass(frozen=True)
class Fault:
    """At item ``at`` (or ``LAST``): write the flag ``flag_dir/name`` and/or raise (``how``).

    ``how`` is "flag" (only the flag), "raise" (ValueError), "unpicklable-args", "lock" or
    "bad-str" (see the exception classes above). ``pause``: seconds to block the whole worker
    (``time.sleep``) before raising, so a second failure can be arranged to land while the
    run is already being stopped; ``after``: a flag to wait for first (another component's).
    """

    at: int = 0
    how: str = "flag"
    flag_dir: str = ""
    name: str = "flag"
    pause: float = 0.0
    after: str = ""  # first wait (blocking, at most 10 s) until this flag exists

    def hit(self, seq: int, n: int, where: str) -> None:
        at = n - 1 if self.at == LAST else self.at
        if seq != at:
            return
        if self.after:
            import time

            for _ in range(1000):
                if read_flag(self.flag_dir, self.after) is not None:
                    break
                time.sleep(0.01)
        if self.flag_dir:
            write_flag(self.flag_dir, self.name)
        if self.how != "flag":
            if self.pause:
                import time

                time.sleep(self.pause)
            _raise(self.how, where)


def write_flag(flag_dir: str, name: str) -> None:
    """Say "I got here" with this process's pid (written whole, then renamed into place)."""
    tmp = os.path.join(flag_dir, f".{name}.{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(str(os.getpid()))
    os.replace(tmp, os.path.join(flag_dir, name))


def read_flag(flag_dir: str, name: str) -> int | None:
    """The pid that wrote flag ``name``, or None while it is not there."""
    try:
        return int(Path(flag_dir, name).read_text())
    except (FileNotFoundError, ValueError):  # not there yet, or a script still writing it
        return None


NO_FAULT = Fault()
# Polls (5 ms apart) a held source makes for its go file: 30 s, then it starts anyway.
HOLD_POLLS = 6000


def _exists(path: str) -> bool:
    return os.path.exists(path)


@component
@inport("n")
@inport("pub", default="p")
@inport("kind", default="int")
@inport("delay", default=0.0)
@inport("fault", default=NO_FAULT)
@inport("hold", default="")
@outport("out")
async def LedgerSource(n, pub, kind, delay, fault, hold, out):
    """Sends ``(pub, seq, payload)`` for seq in 0..n-1, sleeping ``delay`` s between items;
    with ``hold`` (a path), only once that file exists."""
    for _ in range(HOLD_POLLS if hold else 0):
        if _exists(hold):
            break
        await asyncio.sleep(0.005)
    for seq in range(n):
        if fault.at != LAST:
            fault.hit(seq, n, "source")
        await out.send((pub, seq, payload(kind, seq)))
        if delay:
            await asyncio.sleep(delay)
    if fault.at == LAST:
        fault.hit(n - 1, n, "source")


@component
@inport("x")
@inport("n", default=0)
@inport("fault", default=NO_FAULT)
@outport("out")
async def LedgerStage(x, n, fault, out):
    """Passes items on; ``fault`` counts items by their ``seq`` (``n`` is the stream length)."""
    fault.hit(x[1], n, "stage")
    await out.send(x)


@component
@inport("x")
@inport("ledger")
@inport("kind", default="int")
@inport("n", default=0)
@inport("fault", default=NO_FAULT)
@inport("tag", default="sink")
async def LedgerSink(x, ledger, kind, n, fault, tag):
    """Appends ``pub seq ok pid`` per item to ``ledger/<tag>`` (one write per line: atomic)."""
    pub, seq, value = x
    fault.hit(seq, n, "sink")
    line = f"{pub} {seq} {int(intact(kind, seq, value))} {os.getpid()}\n"
    fd = os.open(os.path.join(ledger, tag), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def received(ledger: str | Path) -> list[tuple[str, int, bool, str]]:
    """Every ``(pub, seq, intact, tag)`` recorded in ``ledger``, in each sink's order."""
    out = []
    for path in sorted(Path(ledger).iterdir()):
        for line in path.read_text().splitlines():
            pub, seq, ok, _pid = line.split()
            out.append((pub, int(seq), ok == "1", path.name))
    return out


def check(ledger: str | Path, sent: dict[str, int], copies: int = 1) -> None:
    """Assert that the sinks got exactly ``copies`` of every item sent (``sent``: publisher ->
    items), each intact, with ``seq`` increasing per publisher at every sink (tag)."""
    got = received(ledger)
    bad = [(p, s) for p, s, ok, _ in got if not ok]
    assert not bad, f"payloads arrived damaged: {bad[:5]}"
    want = Counter({(p, s): copies for p, n in sent.items() for s in range(n)})
    have = Counter((p, s) for p, s, _, _ in got)
    missing = want - have
    extra = have - want
    assert not missing and not extra, (
        f"ledger differs: {sum(missing.values())} missing (first {sorted(missing)[:5]}), "
        f"{sum(extra.values())} extra (first {sorted(extra)[:5]})"
    )
    last: dict[tuple[str, str], int] = defaultdict(lambda: -1)
    for pub, seq, _, tag in got:
        assert seq > last[(tag, pub)], f"{tag} got {pub} #{seq} after #{last[(tag, pub)]}"
        last[(tag, pub)] = seq
