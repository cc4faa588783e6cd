"""A ``send`` that was never awaited is the component's error, at no cost to the sends that are.

``port.send(item)`` hands the item over at once when it can (an edge with room: it returns an
already finished awaitable) and returns a coroutine when it must wait or when the receiver runs
inline. A runner that forgets ``await`` therefore loses items only on the coroutine paths, and
only when a connection is full or the receiver shares its worker. Two checks find the mistake
without adding work to the per-item path (the pipeline benchmark W1 is most of that path):

- Statically, before a component starts: its runner's source holding ``out.send(...)`` as a
  statement of its own (the value dropped) for one of its outports. This finds the usual form of
  the mistake whatever the placement, also where every item happened to find room.
- At run time, for every other form: CPython reports a coroutine that is destroyed without
  having run through ``warnings._warn_unawaited_coroutine``; the worker replaces that hook, and
  a coroutine of one of cascata's send paths reported there is the error of the component and
  port that made it. Other coroutines go to the original hook (a RuntimeWarning).
"""

from __future__ import annotations

import ast
import inspect
import os
import textwrap
import traceback
import warnings
from collections.abc import Callable
from typing import Any

from .._plan import Plan
from ..errors import CascataError, ComponentError

_HERE = os.path.dirname(os.path.abspath(__file__))


def unawaited_error(component: str, port: str, worker: str, where: str) -> ComponentError:
    """The error of a component that called ``port.send(...)`` without awaiting it."""
    advice = (
        f"port '{port}': send() was called but not awaited, so the item is not sent; "
        f"write `await {port}.send(...)`"
    )
    message = f"component {component}: {advice} (in {worker})\n--- where ---\n{where.rstrip()}"
    return ComponentError(component, worker, "UnawaitedSend", advice, where, message=message)


def watch_sends(
    plan: Plan, worker: int, worker_name: str, runtimes: list[Any],
    report: Callable[[CascataError], None],
) -> SendWatch:
    """Check every runner's source, then watch the run for dropped sends (see the module
    docstring); each finding is reported as the component's error. Uninstall when done."""

    def found(component: str, port: str, where: str) -> None:
        report(unawaited_error(component, port, worker_name, where))

    for rt in runtimes:
        runner = rt.plan.runner
        for port, line in dropped_sends(runner, [op.name for op in rt.plan.outports]):
            path = getattr(getattr(runner, "__code__", None), "co_filename", "?")
            found(rt.plan.label, port, f'  File "{path}", line {line}, in {runner.__name__}')
    ports = {id(p): (rt.plan.label, name) for rt in runtimes for name, p in rt.outputs.items()}
    watch = SendWatch(plan, worker, ports, found)
    watch.install()
    return watch


def dropped_sends(runner: Any, ports: list[str]) -> list[tuple[str, int]]:
    """(port, line) of each ``port.send(...)`` whose result the runner's source drops; empty
    when the source is not available (then only the run-time check applies)."""
    try:
        lines, first = inspect.getsourcelines(runner)
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError):
        return []
    names = set(ports)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Expr) or not isinstance(node.value, ast.Call):
            continue
        func = node.value.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "send"
            and isinstance(func.value, ast.Name)
            and func.value.id in names
        ):
            found.append((func.value.id, first + node.lineno - 1))
    return found


class SendWatch:
    """Replaces the interpreter's report of never-awaited coroutines in a worker, and turns a
    dropped send into ``report(label, port, stack)``.

    ``ports`` maps id(OutputPort) to (component label, port); the plan gives the same for edge
    ids, and for inline consumers (by the consumer's 'component.port')."""

    def __init__(
        self, plan: Plan, worker: int, ports: dict[int, tuple[str, str]],
        report: Callable[[str, str, str], None],
    ) -> None:
        labels = {c.name: c.label for c in plan.components}
        self._ports = ports
        self._edges: dict[int, tuple[str, str]] = {}
        self._inline: dict[str, tuple[str, str]] = {}
        for e in plan.edges:
            if e.src_worker != worker:
                continue
            where = (labels[e.src_component], e.src_port)
            self._edges[e.edge_id] = where
            if e.inline:
                self._inline[f"{e.dst_component}.{e.dst_port}"] = where
        self._report = report
        self._previous: Callable[[Any], None] | None = None

    def install(self) -> None:
        self._previous = getattr(warnings, "_warn_unawaited_coroutine", None)
        if self._previous is not None:  # CPython; elsewhere only the static check applies
            warnings._warn_unawaited_coroutine = self._unawaited  # type: ignore[attr-defined]

    def uninstall(self) -> None:
        if self._previous is not None:
            warnings._warn_unawaited_coroutine = self._previous  # type: ignore[attr-defined]

    def _unawaited(self, coro: Any) -> None:
        where = self._sender(coro)
        if where is None:
            if self._previous is not None:
                self._previous(coro)
            return
        # Called as the coroutine is dropped: the stack shows the runner's line that dropped it.
        stack = "".join(traceback.format_stack()[:-1])
        self._report(where[0], where[1], stack)

    def _sender(self, coro: Any) -> tuple[str, str] | None:
        """The (component, port) whose send made ``coro``, if it is one of cascata's."""
        code = getattr(coro, "cr_code", None)
        frame = getattr(coro, "cr_frame", None)
        if code is None or frame is None or os.path.dirname(code.co_filename) != _HERE:
            return None
        local = frame.f_locals
        this = local.get("self")
        where = local.get("where")  # a collected port's send
        if isinstance(where, tuple) and len(where) == 2:
            return where
        if this is not None and id(this) in self._ports:  # a port sending over several routes
            return self._ports[id(this)]
        edge = local.get("edge", getattr(this, "edge_id", None))  # a channel's put, a remote edge
        if isinstance(edge, int) and edge in self._edges:
            return self._edges[edge]
        channel = local.get("channel")  # an inline consumer's accept
        if channel is not None and "runtime" in local:
            return self._inline.get(getattr(channel, "full_name", ""))
        return None
