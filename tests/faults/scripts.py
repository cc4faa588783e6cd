"""User scripts the fault suite runs as real processes (Ctrl-C, kill -9 of the caller)."""

from __future__ import annotations

import os
import textwrap

# The start every script shares: its imports, FLAGS (argv[1], where it raises its flag), an
# endless, paced source of numbers, and a sink that raises the flag at the 50th.
HEADER = textwrap.dedent(
    """
    import asyncio, os, sys, time
    from cascata import Graph, component, inport, outport

    FLAGS = sys.argv[1]

    @component
    @inport("n")
    @outport("out")
    async def Numbers(n, out):
        for i in range(n):
            await out.send(i)
            await asyncio.sleep(0.001)

    def flag():
        with open(os.path.join(FLAGS, "flag.tmp"), "w") as f:
            f.write(str(os.getpid()))
        os.replace(os.path.join(FLAGS, "flag.tmp"), os.path.join(FLAGS, "flag"))

    @component
    @inport("x")
    async def Mark(x):
        if x == 50:
            flag()
    """
)


def write_script(flag_dir: str, body: str) -> str:
    """Write HEADER + ``body`` (dedented) as a script in ``flag_dir``; return its path."""
    path = os.path.join(flag_dir, "user_script.py")
    with open(path, "w") as f:
        f.write(HEADER + textwrap.dedent(body))
    return path
