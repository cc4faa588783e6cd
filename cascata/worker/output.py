"""What a worker on another host prints reaches the caller.

A worker forked on the caller's machine shares the caller's terminal; one started by a daemon
does not, so there ``sys.stdout`` and ``sys.stderr`` are replaced by :class:`ForwardedStream`
objects that send whole lines to the coordinator as ``Output`` records (it prints them tagged
with the host). Only Python-level writes are forwarded: what native code or a child process
writes to file descriptors 1 and 2 goes to the daemon's own output.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable
from typing import Any

from ..transport import control


class ForwardedStream(io.TextIOBase):
    """A text stream that sends each completed line (and, on flush, the rest) through ``send``."""

    def __init__(self, name: str, send: Callable[[control.Record], None], original: Any) -> None:
        super().__init__()
        self.name = name
        self._send = send
        self._original = original
        # Each thread's unfinished line apart: print() writes the text and the newline in two
        # calls, and lines printed by threads of a component must not be cut into each other.
        self._pending: dict[int, list[str]] = {}
        self._lock = threading.Lock()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        # faulthandler and subprocess want a descriptor: the daemon's own stream.
        return self._original.fileno()

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        cut = text.rfind("\n")
        with self._lock:
            me = threading.get_ident()
            pending = self._pending.setdefault(me, [])
            if cut < 0:
                pending.append(text)
                return len(text)
            pending.append(text[: cut + 1])
            self._send(control.Output(self.name, "".join(pending)))
            if cut + 1 < len(text):
                self._pending[me] = [text[cut + 1 :]]
            else:
                del self._pending[me]  # threads come and go: keep none that has nothing
        return len(text)

    def flush(self) -> None:
        with self._lock:
            rest = "".join("".join(p) for p in self._pending.values())
            self._pending.clear()
        if rest:
            self._send(control.Output(self.name, rest))


def forward_output(send: Callable[[control.Record], None]) -> Callable[[], None]:
    """Replace ``sys.stdout`` and ``sys.stderr`` by forwarding streams; return the function that
    sends what is left and puts the originals back (call it before the worker reports DONE)."""
    originals = sys.stdout, sys.stderr
    sys.stdout = ForwardedStream("stdout", send, originals[0])
    sys.stderr = ForwardedStream("stderr", send, originals[1])

    def restore() -> None:
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, ForwardedStream):
                stream.flush()
                sys.stdout, sys.stderr = originals

    return restore
