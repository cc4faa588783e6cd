"""The ``cascata`` logger: lines tagged with the component that emitted them.

``from cascata import log`` (or ``import cascata.log as log``) then ``log.info('hello')`` inside a
component prints ``INFO - name@Class: hello`` on the caller's stderr, whichever worker process or
host ran the component; colour only when stderr is a terminal.

Workers forward every record, of any logger, with the component that made it; the caller re-emits
it through the logger of the same name (:func:`reemit`), so the application's handlers, levels
and formatters apply. cascata's console is only the fallback for an application that configured
no handler (:class:`CascataLogger`).
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


def awaiting_component(coro: Any) -> tuple[str, str] | None:
    """The innermost inline firing on the await chain of a suspended coroutine (a component's
    task), or None when the task's own component is the one waiting. Read only when a run is
    judged deadlocked, so the hot path pays nothing for it."""
    found = None
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        owner = _FRAME_OWNERS.get(frame.f_code) if frame is not None else None
        if owner is not None:
            found = owner(frame)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return found

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


def format_line(
    levelname: str,
    component: tuple[str, str] | None,
    message: str,
    colour: bool,
    source: str = "cascata",
) -> str:
    """``LEVEL - name@Class: message``; outside components ``LEVEL - source: message``, where
    ``source`` is the logger's name (``cascata`` for cascata's own)."""
    if colour:
        levelname = f"{_LEVEL_COLOURS.get(levelname, '')}{levelname}{_RESET}"
    if component is None:
        return f"{levelname} - {source}: {message}"
    name, cls = component
    if colour:
        return f"{levelname} - {name}{_class_colour(cls)}@{cls}{_RESET}: {message}"
    return f"{levelname} - {name}@{cls}: {message}"


def write_line(
    levelname: str, component: tuple[str, str] | None, message: str, source: str = "cascata"
) -> None:
    """Write one formatted line to the current stderr (looked up now, so redirection works)."""
    stream = sys.stderr
    colour = bool(getattr(stream, "isatty", lambda: False)())
    stream.write(format_line(levelname, component, message, colour, source) + "\n")
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
    """cascata's own console output: ``LEVEL - name@Class: message`` on stderr, coloured on a
    terminal. Used only while the application has configured no logging handler."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            component = getattr(record, "cascata_component", None) or running_component()
            text = getattr(record, "cascata_text", None)
            if text is None:
                text = _full_message(record)
            write_line(record.levelname, component, text, record.name)
        except Exception:
            self.handleError(record)


_CONSOLE = ConsoleHandler()

# The level of cascata's lines while the application has configured no logging (its root logger
# has no handler) and nobody called log.setLevel: INFO, not the WARNING of Python's last resort.
DEFAULT_LEVEL = logging.INFO


def deliver(logger: logging.Logger, record: logging.LogRecord) -> None:
    """Hand ``record`` to the handlers the application configured for ``logger``, or to cascata's
    console when there are none (where Python would fall back to its bare last resort)."""
    if logger.hasHandlers():
        logging.Logger.callHandlers(logger, record)
    elif record.levelno >= _CONSOLE.level:
        _CONSOLE.handle(record)


class CascataLogger(logging.Logger):
    """The ``cascata`` logger: standard, except for its defaults while the application has
    configured nothing. Its level is the one given with ``setLevel``; else the root logger's
    once the root has a handler (``logging.basicConfig(level=...)`` applies); else INFO. Its
    records go to the application's handlers, or to cascata's console when there are none."""

    def getEffectiveLevel(self) -> int:
        if self.level or logging.getLogger().handlers:
            return super().getEffectiveLevel()
        return DEFAULT_LEVEL

    def isEnabledFor(self, level: int) -> bool:
        # Not cached like Logger's: adding a handler to the root changes the answer.
        if self.disabled or self.manager.disable >= level:
            return False
        return level >= self.getEffectiveLevel()

    def callHandlers(self, record: logging.LogRecord) -> None:
        deliver(self, record)


class ForwardHandler(logging.Handler):
    """In a worker: hands each record, with the component running when it was made and its full
    text, to ``send(record, component, text)``; the caller re-emits it (:func:`reemit`)."""

    def __init__(self, send: Callable[[logging.LogRecord, Any, str], None]) -> None:
        super().__init__()
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            component = running_component()
            self._send(record, list(component) if component else None, _full_message(record))
        except Exception:
            self.handleError(record)


def reemit(
    logger_name: str,
    levelno: int,
    levelname: str,
    component: Any,
    text: str,
    created: float = 0.0,
    host: str = "local",
) -> None:
    """In the caller: log a record a worker forwarded, through the logger of the same name, so
    the application's levels, filters, handlers and formatters apply to it. The message carries
    the component's tag (``name@Class: text``); ``record.cascata_component`` holds it apart, and
    ``record.cascata_host`` where the worker ran (``local``, or a daemon's address)."""
    logger = logging.getLogger(logger_name)
    if not logger.isEnabledFor(levelno):
        return
    tag = tuple(component) if component else None
    message = f"{tag[0]}@{tag[1]}: {text}" if tag else text
    record = logger.makeRecord(
        logger_name, levelno, "(cascata worker)", 0, message, None, None,
        extra={"cascata_component": tag, "cascata_text": text, "cascata_host": host},
    )
    record.levelname = levelname
    if created:
        record.relativeCreated += (created - record.created) * 1000
        record.created = created
        record.msecs = (created - int(created)) * 1000
    if not logger.disabled and logger.filter(record):
        deliver(logger, record)


def _cascata_logger() -> logging.Logger:
    found = logging.getLogger("cascata")
    if not isinstance(found, CascataLogger):
        found.__class__ = CascataLogger  # made before cascata was imported: give it our defaults
    for handler in [h for h in found.handlers if isinstance(h, ConsoleHandler)]:
        found.removeHandler(handler)  # attached by an older copy of this module (a reload)
    found.propagate = True
    return found


log = _cascata_logger()

# ``import cascata.log as log`` yields this module (or the logger): both offer the same calls.
debug = log.debug
info = log.info
warning = log.warning
warn = log.warning
error = log.error
exception = log.exception
critical = log.critical
setLevel = log.setLevel  # noqa: N816 - mirrors logging.Logger's name


def use_forwarding(send: Callable[[logging.LogRecord, Any, str], None], level: int) -> None:
    """In a worker: send every record of every logger to the caller through ``send``.

    The handlers a forked worker inherited from the caller are removed (the caller writes its
    files and its stderr; the worker must not write them too), and the cascata logger takes
    ``level``, the one the caller had when the run started (the plan carries it to every host).
    """
    forward = ForwardHandler(send)
    root = logging.getLogger()
    loggers = [v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)]
    for logger in [root, *loggers]:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        if logger is root or not logger.propagate:
            logger.addHandler(forward)
    log.setLevel(level)
