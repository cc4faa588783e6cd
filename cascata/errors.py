"""The one exception tree of cascata.

Every error takes fields and builds its own message (what failed, what was found, what to do), and
survives pickling, because errors cross process boundaries::

    CascataError
    ├── GraphError                 bad wiring, found at graph time
    │   ├── DeadlockError          static or run-time deadlock, lists every issue
    │   └── PortTypeError          (also a TypeError) an output type the input does not accept
    ├── ComponentError             user code raised; names component, worker/host, traceback
    ├── WorkerLostError            a worker process died, froze, or could not finish
    ├── HostLostError              a remote host or daemon stopped answering
    ├── PlanRefusedError           a daemon cannot run the plan (versions, missing module, replay)
    ├── AddressError               (also a ValueError) an address that cannot be bound or reached
    ├── ProtocolError              a malformed frame, or items lost on a connection
    ├── SerializationError         an item that cannot be serialized or is too large
    │   └── ItemTooLargeError
    ├── TimeoutError               (also the builtin TimeoutError) g.run(timeout=...) ran out
    └── AuthenticationError        a peer failed CurveZMQ authentication
        └── KeyFileError           the cluster key file is missing, unsafe or malformed
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any


class CascataError(Exception):
    """Base of every error cascata raises on purpose.

    ``also`` lists other failures of the same run that happened at about the same time (one
    line each); the message mentions them too (see :func:`with_others`)."""

    also: tuple[str, ...] = ()

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild from the keyword fields, so subclasses with custom __init__ unpickle correctly.
        return (_rebuild, (type(self), self._fields(), self.also))

    def _fields(self) -> dict[str, Any]:
        return {"message": str(self)}


def _rebuild(
    cls: type[CascataError], fields: dict[str, Any], also: tuple[str, ...] = ()
) -> CascataError:
    error = cls(**fields)
    error.also = tuple(also)
    return error


def with_others(error: BaseException, others: Sequence[BaseException]) -> BaseException:
    """``error``, its message extended with the components among ``others`` that also failed
    (a run raises one error; the user should still hear of a second failing component)."""
    if not isinstance(error, CascataError):
        return error
    seen = {getattr(error, "component", None)}
    lines = []
    for other in others:
        if isinstance(other, ComponentError) and other.component not in seen:
            seen.add(other.component)
            lines.append(
                f"{other.component} raised {other.exc_type}: {other.exc_message} (in {other.worker})"
            )
    if not lines:
        return error
    text = str(error) + "\nAlso failed at about the same time:\n  " + "\n  ".join(lines)
    combined = type(error)(**{**error._fields(), "message": text})
    combined.also = tuple(lines)
    return combined


class GraphError(CascataError):
    """The graph is wired wrongly; found before any process starts."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class DeadlockError(GraphError):
    """The graph cannot make progress; ``issues`` lists every problem found."""

    def __init__(self, issues: list[str] | str, message: str | None = None) -> None:
        self.issues = [issues] if isinstance(issues, str) else list(issues)
        text = message or "Deadlock detected:\n  " + "\n  ".join(self.issues)
        super().__init__(text)

    def _fields(self) -> dict[str, Any]:
        return {"issues": self.issues, "message": str(self)}


class PortTypeError(GraphError, TypeError):
    """An output port's type is not accepted by the input port it is wired to."""


class ComponentError(CascataError):
    """A component's own code raised an exception while the graph ran."""

    def __init__(
        self,
        component: str,
        worker: str,
        exc_type: str,
        exc_message: str,
        traceback: str,
        message: str | None = None,
    ) -> None:
        self.component = component
        self.worker = worker
        self.exc_type = exc_type
        self.exc_message = exc_message
        self.traceback = traceback
        what = f"{exc_type}: {exc_message}" if exc_message else exc_type
        text = message or (
            f"component {component} raised {what} (in {worker})\n"
            f"--- original traceback ---\n{traceback.rstrip()}"
        )
        super().__init__(text)

    def _fields(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "worker": self.worker,
            "exc_type": self.exc_type,
            "exc_message": self.exc_message,
            "traceback": self.traceback,
            "message": str(self),
        }


class WorkerLostError(CascataError):
    """A worker process exited, froze or could not finish before the run finished.

    ``hint`` says what to look at for this cause (the coordinator picks it: OOM-killer advice
    for SIGKILL, another for a stopped or frozen process, another for an exit code)."""

    def __init__(
        self,
        worker: str,
        pid: int | None,
        cause: str,
        components: list[str] | tuple[str, ...] = (),
        hint: str | None = None,
        message: str | None = None,
    ) -> None:
        self.worker = worker
        self.pid = pid
        self.cause = cause
        self.components = list(components)
        self.hint = hint or "The run was stopped."
        hosted = ", ".join(self.components) or "no components"
        text = message or f"worker {worker} was lost: {cause}; it hosted {hosted}. {self.hint}"
        super().__init__(text)

    def _fields(self) -> dict[str, Any]:
        return {
            "worker": self.worker,
            "pid": self.pid,
            "cause": self.cause,
            "components": self.components,
            "hint": self.hint,
            "message": str(self),
        }


class HostLostError(CascataError):
    """A remote host or its daemon stopped answering."""

    def __init__(self, address: str, cause: str, message: str | None = None) -> None:
        self.address = address
        self.cause = cause
        super().__init__(message or f"host {address} was lost: {cause}")

    def _fields(self) -> dict[str, Any]:
        return {"address": self.address, "cause": self.cause, "message": str(self)}


class PlanRefusedError(CascataError):
    """A daemon cannot run the plan: other versions, a module missing on that host, a replayed
    plan, a daemon busy with another run, or a daemon shutting down; ``address`` names it."""

    def __init__(self, address: str, reason: str, message: str | None = None) -> None:
        self.address = address
        self.reason = reason
        super().__init__(message or f"host {address} cannot run this plan: {reason}")

    def _fields(self) -> dict[str, Any]:
        return {"address": self.address, "reason": self.reason, "message": str(self)}


class AddressError(CascataError, ValueError):
    """An address cannot be used: malformed, not on this machine, already in use, unreachable."""

    def __init__(self, address: str, reason: str, message: str | None = None) -> None:
        self.address = address
        self.reason = reason
        super().__init__(message or f"address {address!r} cannot be used: {reason}")

    def _fields(self) -> dict[str, Any]:
        return {"address": self.address, "reason": self.reason, "message": str(self)}


class ProtocolError(CascataError):
    """A frame did not follow the wire format, or items went missing on a connection."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class SerializationError(CascataError):
    """An item could not be serialized to cross a process boundary (or, on the receiving side,
    rebuilt). ``component`` names the sender as ``name@Class``, like ComponentError; for an item
    that failed to deserialize it names the connection instead (``'a.out' -> 'b.x'``)."""

    def __init__(
        self,
        component: str,
        port: str,
        item_type: str,
        reason: str,
        message: str | None = None,
    ) -> None:
        self.component = component
        self.port = port
        self.item_type = item_type
        self.reason = reason
        text = message or (
            f"component {component} sent an item of type {item_type} on port '{port}' that "
            f"cannot be serialized: {reason}. Send picklable data (plain values, arrays, "
            "module-level classes), or place sender and receiver in the same worker."
        )
        super().__init__(text)

    def _fields(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "port": self.port,
            "item_type": self.item_type,
            "reason": self.reason,
            "message": str(self),
        }


class ItemTooLargeError(SerializationError):
    """A serialized item exceeds the configured size limit."""


class AuthenticationError(CascataError):
    """A peer could not be authenticated (wrong or missing cluster key); ``address`` names the peer
    when one is known."""

    def __init__(self, message: str, address: str | None = None) -> None:
        self.address = address
        super().__init__(message)

    def _fields(self) -> dict[str, Any]:
        return {"message": str(self), "address": self.address}


class KeyFileError(AuthenticationError):
    """The cluster key file cannot be used: missing, readable by others, too short or malformed.

    The message names the file, the problem and the command that fixes it; it never holds the key.
    """

    def __init__(self, path: str, problem: str, remedy: str, message: str | None = None) -> None:
        self.path = path
        self.problem = problem
        self.remedy = remedy
        super().__init__(message or f"cluster key file {path} {problem}. {remedy}")

    def _fields(self) -> dict[str, Any]:
        return {"path": self.path, "problem": self.problem, "remedy": self.remedy, "message": str(self)}


class TimeoutError(CascataError, builtins.TimeoutError):  # noqa: A001 - the name users expect
    """The run did not end within ``g.run(timeout=...)``: every worker was stopped.

    ``running`` names the components still running when time ran out. Also an instance of the
    builtin ``TimeoutError``, so ``except TimeoutError`` catches it without importing it."""

    def __init__(
        self, timeout: float, running: Sequence[str] = (), message: str | None = None
    ) -> None:
        self.timeout = timeout
        self.running = tuple(running)
        still = ", ".join(self.running) if self.running else "nothing (the run was ending)"
        super().__init__(
            message
            or f"the run did not finish within its timeout of {timeout:g} s and was stopped; "
            f"still running: {still}. Raise the timeout, or look at these components "
            "(a run report or progress=True shows where time goes)."
        )

    def _fields(self) -> dict[str, Any]:
        return {"timeout": self.timeout, "running": self.running, "message": str(self)}
