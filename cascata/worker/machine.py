"""This machine, as a daemon describes it to the coordinator: its CPUs and which machine it is.

Two daemons on one machine (network namespaces, containers, two listen addresses) share its CPUs;
the boot id tells the coordinator so, and it then starts no more workers there than the machine
has CPUs (unless the caller asks for a number of workers, or the daemons' operator fixed their
processes with ``--processes``).
"""

from __future__ import annotations

import os

# The kernel's random id of this boot: the same in every namespace and container of a machine.
BOOT_ID = "/proc/sys/kernel/random/boot_id"


def available_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def machine_id() -> str:
    """An id of this machine's current boot; empty where the kernel does not say (not Linux)."""
    try:
        with open(BOOT_ID) as f:
            return f.read().strip()
    except OSError:
        return ""
