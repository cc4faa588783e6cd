"""Wiring-time type checks between an output port and an input port."""

from __future__ import annotations

from typing import Any


def check_connection(src: Any, dst: Any) -> None:
    """Raise PortTypeError when ``src`` may send items ``dst`` does not accept."""
    return None
