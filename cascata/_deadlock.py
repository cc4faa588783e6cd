"""Static deadlock checks run before any process starts."""

from __future__ import annotations

from typing import Any


def find_issues(graph: Any) -> list[str]:
    """Every static problem of ``graph``, as messages; empty when it can run."""
    return []
