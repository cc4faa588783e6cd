"""The ``cascata`` logger: lines tagged with the component that emitted them.

``from cascata import log`` (or ``import cascata.log as log``) then ``log.info('hello')`` inside a
component prints ``INFO - name@Class: hello`` on the caller's stderr, whichever worker process or
host ran the component; colour only when stderr is a terminal.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Callable
from contextvars import ContextVar
from types import CodeType, FrameType
from typing import Any

# (instance name, class name) of the component whose task this is (set once per task).
current_component: ContextVar[tuple[str, str] | None] = ContextVar(
    "cascata_current_component", default=None
)

# Code objects of functions that fire a component inside another one's task (the worker's
# inline hand-over), with how to read the component from such a frame. Setting the context
# variable on every inline firing would cost more than the firing itself; a log call is rare,
# so it walks the stack instead.
_FRAME_OWNERS: dict[CodeType, Callable[[FrameType], tuple[str, str]]] = {}


def register_frame_owner(code: CodeType, owner: Callable[[FrameType], tuple[str, str]]) -> None:
    """Frames running ``code`` belong to the component ``owner(frame)`` returns."""
    _FRAME_OWNERS[code] = owner


def running_component() -> tuple[str, str] | None:
    """The component whose code called this: the innermost inline firing on the stack, else
    the one whose task this is, else None (outside components, or in a thread of the user's).

    A task the user creates inside an inline consumer is credited to its task's component."""
    frame: FrameType | None = sys._getframe(1)
    owners = _FRAME_OWNERS
    while frame is not None:
        owner = owners.get(frame.f_code)
        if owner is not None:
            return owner(frame)
        frame = frame.f_back
    return current_component.get()

_RESET = "\033[0m"
_LEVEL_COLOURS = {
    "DEBUG": "\033[34m",
    "INFO": "\033[36m",
    "WARNING": "\033[33m",
    "ERROR": "\033[31m",
    "CRITICAL": "\033[1;31m",
}


def _class_colour(name: str) -> str:
    """A stable bright colour per component class, so one class's lines are easy to follow."""
    code = 16 + int.from_bytes(hashlib.md5(name.encode(), usedforsecurity=False).digest()[:2], "big") % 216
    return f"\033[38;5;{code}m"


def format_line(levelname: str, component: tuple[str, str] | None, message: str, colour: bool) -> str:
    """``LEVEL - name@Class: message`` (``LEVEL - cascata: message`` outside components)."""
    if component is None:
        who = "cascata"
        if colour:
            levelname = f"{_LEVEL_COLOURS.get(levelname, '')}{levelname}{_RESET}"
        return f"{levelname} - {who}: {message}"
    name, cls = component
    if colour:
        levelname = f"{_LEVEL_COLOURS.get(levelname, '')}{levelname}{_RESET}"
        return f"{levelname} - {name}{_class_colour(cls)}@{cls}{_RESET}: {message}"
    return f"{levelname} - {name}@{cls}: {message}"


def write_line(levelname: str, component: tuple[str, str] | None, message: str) -> None:
    """Write one formatted line to the current stderr (looked up now, so redirection works)."""
    stream = sys.stderr
    colour = bool(getattr(stream, "isatty", lambda: False)())
    stream.write(format_line(levelname, component, message, colour) + "\n")
    stream.flush()


def _full_message(record: logging.LogRecord) -> str:
    """The message plus any traceback (``log.exception``) or stack (``stack_info=True``)."""
    message = record.getMessage()
    if record.exc_info:
        message += "\n" + _TRACEBACKS.formatException(record.exc_info)
    if record.stack_info:
        message += "\n" + _TRACEBACKS.formatStack(record.stack_info)
    return message


_TRACEBACKS = logging.Formatter()


class ConsoleHandler(logging.Handler):
    """Writes records of this process to stderr, tagged with the running component."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            component = getattr(record, "cascata_component", None) or running_component()
            write_line(record.levelname, component, _full_message(record))
        except Exception:
            self.handleError(record)


class ForwardHandler(logging.Handler):
    """In a worker: hands each record to ``send(levelname, component, message)`` for the caller."""

    def __init__(self, send: Callable[[str, Any, str], None]) -> None:
        super().__init__()
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            component = running_component()
            self._send(record.levelname, list(component) if component else None, _full_message(record))
        except Exception:
            self.handleError(record)


log = logging.getLogger("cascata")
log.setLevel(logging.DEBUG)
log.propagate = False
if not any(isinstance(h, ConsoleHandler) for h in log.handlers):
    log.addHandler(ConsoleHandler())

# ``import cascata.log as log`` yields this module (or the logger): both offer the same calls.
debug = log.debug
info = log.info
warning = log.warning
warn = log.warning
error = log.error
exception = log.exception
critical = log.critical
setLevel = log.setLevel  # noqa: N816 - mirrors logging.Logger's name


def use_forwarding(send: Callable[[str, Any, str], None]) -> None:
    """Route this process's cascata log lines through ``send`` instead of its own stderr."""
    for handler in list(log.handlers):
        log.removeHandler(handler)
    log.addHandler(ForwardHandler(send))
