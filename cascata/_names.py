"""Names in graphs: what ``g.name = C`` binds in the caller's namespace, and the checks and
warnings that name what the user wrote (persists lacking arguments, lines outside cascata).

As in cascata 0.1, ``g.name = C`` at module level also binds ``name`` where it was written; a
binding over something else the name held (a builtin, a variable, the class) warns.
"""

from __future__ import annotations

import builtins
import inspect
import sys
import warnings
from typing import Any

from .component import Component
from .errors import GraphError

_MISSING = object()


def check_persists(graph: Any) -> None:
    """Raise a GraphError naming every persist whose factory cannot take the arguments set, before
    any worker starts (a worker would otherwise fail on it at its first item)."""
    problems: dict[str, str] = {}
    for comp in graph._nodes.values():
        owner = comp.group_name or comp.name
        for persist in comp.persists:
            error = persist.arguments_error()
            name = f"{owner}.{persist.name}"
            if error is None or name in problems:
                continue
            problems[name] = (
                f"persist '{name}': its factory cannot take the arguments set ({error}); set "
                f"them before run() with g.{name} < value (a tuple gives several arguments, a dict "
                "keyword arguments)"
            )
    if problems:
        raise GraphError("\n".join(problems.values()))


def stacklevel_outside_cascata() -> int:
    """The ``stacklevel`` that makes a warning point at the first caller outside cascata."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] == "cascata":
        level, frame = level + 1, frame.f_back
    return level


def bind_in_caller(name: str, obj: Any, depth: int) -> None:
    """Bind ``name`` in the namespace of the module-level code that wrote ``g.name = ...``, as
    cascata 0.1 did, warning when that replaces something else the name held there.

    Inside a function nothing is bound (the README says to use ``g.name`` there): Python versions
    disagree on whether writing a function's locals through its frame takes effect.
    """
    try:
        frame = sys._getframe(depth)
    except ValueError:
        return
    if frame.f_code.co_flags & inspect.CO_OPTIMIZED:
        return
    namespace = frame.f_locals
    old = namespace.get(name, _MISSING)
    if old is _MISSING and name not in frame.f_globals:
        old = frame.f_builtins.get(name, _MISSING)
    if old is not _MISSING and old is not obj and not _bound_by_cascata(old):
        warnings.warn(
            f"g.{name} = ... binds '{name}' in this namespace to the new component, replacing "
            f"{_describe(old, name)}; choose another component name to keep '{name}' as it was "
            f"(the component is also reachable as g.{name})",
            stacklevel=depth + 1,
        )
    namespace[name] = obj


def _bound_by_cascata(value: Any) -> bool:
    """Whether ``value`` is what a ``g.name = ...`` bound before (a notebook cell run again)."""
    from ._groups import ComponentGroup
    from ._subgraph import SubgraphHandle

    return isinstance(value, Component | ComponentGroup | SubgraphHandle)


def _describe(value: Any, name: str) -> str:
    if getattr(builtins, name, _MISSING) is value:
        return f"the builtin {name}"
    if isinstance(value, type):
        return f"the class {value.__module__}.{value.__qualname__}"
    if inspect.ismodule(value):
        return f"the module {value.__name__}"
    if inspect.isroutine(value):
        return f"the function {getattr(value, '__qualname__', name)}"
    text = repr(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    return f"a {type(value).__name__}: {text}"
