"""Hosts made of Linux network namespaces, for tests and benchmarks that need several machines.

``with Cluster(2) as hosts:`` creates a bridge in the root namespace and two namespaces, each joined
to the bridge by a veth pair, with ``lo`` up and one address in ``10.213.X.0/24`` (X chosen per
cluster among the subnets no route uses yet; the root namespace gets ``.254`` on the bridge, so the
caller can reach every host). Each host runs commands inside its namespace with ``ip netns exec``.
Leaving the block ends every process in the namespaces, then deletes links, bridge and namespaces,
each step bounded in time. Names carry a random token (``cascata-ns-<token>-<i>``, links
``cn<token>...``) so parallel runs do not collide and ``leftovers()`` finds what a run left.

Faults: ``host.cut()`` takes its link down silently (no reset, no error: packets vanish),
``cluster.blackhole(a, b)`` drops traffic between two hosts by routes, ``host.kill(proc)`` kills.
Needs root and iproute2; otherwise ``NetnsUnavailable`` says why.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from typing import Any

# The private range of these hosts: one /24 per cluster, 10.213.X.0/24 with X in 1..253.
SUBNET_PREFIX = "10.213"
# The root namespace's own address on a cluster's bridge (host i gets .i+1).
ROOT_HOST = 254
NETNS_PREFIX = "cascata-ns-"
LINK_PREFIX = "cn"
# Serializes subnet choice between parallel test runs on one machine.
LOCK_FILE = "/tmp/cascata-netns.lock"
# Seconds one `ip` command may take (it takes milliseconds; a busy machine gets slack).
IP_TIMEOUT = 20.0
# Seconds processes in a namespace get after SIGTERM before SIGKILL at teardown.
TERM_GRACE = 3.0
# Seconds to wait for killed processes to vanish from a namespace.
KILL_WAIT = 5.0

# Names this process created and not yet deleted, for leftovers().
_created: set[str] = set()


class NetnsUnavailable(RuntimeError):
    """Network namespaces cannot be made here (not root, no iproute2, no permission)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT)
    except FileNotFoundError as exc:
        raise NetnsUnavailable("the `ip` command (iproute2) is not installed") from exc
    if check and done.returncode != 0:
        raise NetnsUnavailable(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")
    return done


def leftovers() -> list[str]:
    """Namespaces and links this process created that still exist (a teardown that failed)."""
    return sorted(n for n in _created
                  if os.path.exists(f"/run/netns/{n}") or os.path.exists(f"/sys/class/net/{n}"))


class Host:
    """One namespace: ``address`` on the cluster's bridge, ``netns`` its name."""

    def __init__(self, cluster: Cluster, index: int, netns: str, address: str, veth: str) -> None:
        self.cluster = cluster
        self.index = index
        self.netns = netns
        self.address = address
        self.veth = veth  # the root-side end of its veth pair
        self.procs: list[subprocess.Popen[Any]] = []

    def __repr__(self) -> str:
        return f"<Host {self.netns} {self.address}>"

    @property
    def name(self) -> str:
        return self.netns

    @property
    def netns_inode(self) -> int:
        """The namespace's inode: what ``os.stat('/proc/self/ns/net').st_ino`` reads inside it."""
        return os.stat(f"/run/netns/{self.netns}").st_ino

    def argv(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv]

    def run(
        self, argv: Sequence[str], timeout: float = 30.0, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the namespace to completion (output captured as text)."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(self.argv(argv), timeout=timeout, **kwargs)

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside the namespace; the cluster ends it at teardown if still running."""
        proc = subprocess.Popen(self.argv(argv), **kwargs)
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[Any] | int, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to a process (a Popen or a pid) and, if ours, reap it."""
        pid = proc if isinstance(proc, int) else proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if not isinstance(proc, int) and sig == signal.SIGKILL:
            proc.wait(KILL_WAIT)

    def pids(self) -> list[int]:
        """Every process running in the namespace (the daemon's children included)."""
        done = _ip("netns", "pids", self.netns, check=False)
        return [int(p) for p in done.stdout.split()]

    def cut(self) -> None:
        """Take the host off the network without a word: its peers see silence, no reset."""
        _ip("link", "set", self.veth, "down")

    def restore(self) -> None:
        _ip("link", "set", self.veth, "up")


class Cluster:
    """A bridge and ``n`` namespace hosts on it; a context manager that always tears down."""

    def __init__(self, n: int = 2) -> None:
        if os.geteuid() != 0:
            raise NetnsUnavailable("network namespaces need root (run the tests as root)")
        self.n = n
        self.token = secrets.token_hex(3)
        self.bridge = f"{LINK_PREFIX}{self.token}b"
        self.subnet = ""
        self.hosts: list[Host] = []
        self._blackholes: list[tuple[Host, str]] = []

    def __enter__(self) -> list[Host]:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self.hosts

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def root_address(self) -> str:
        """The root namespace's address on the bridge (where a coordinator in the test runs)."""
        return f"{self.subnet}.{ROOT_HOST}"

    def start(self) -> None:
        with open(LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # until the bridge holds its address
            self.subnet = _free_subnet()
            _created.add(self.bridge)
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.root_address}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
        for i in range(self.n):
            self.hosts.append(self._add_host(i))

    def _add_host(self, i: int) -> Host:
        netns = f"{NETNS_PREFIX}{self.token}-{i}"
        veth = f"{LINK_PREFIX}{self.token}v{i}"
        address = f"{self.subnet}.{i + 1}"
        _created.update((netns, veth))
        _ip("netns", "add", netns)
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
        _ip("link", "set", veth, "master", self.bridge, "up")
        _ip("-n", netns, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", netns, "link", "set", "eth0", "up")
        _ip("-n", netns, "link", "set", "lo", "up")
        return Host(self, i, netns, address, veth)

    def blackhole(self, a: Host, b: Host) -> None:
        """Drop traffic between ``a`` and ``b`` by routes in both (their own sends fail with an
        error; what the other one sent simply never gets an answer)."""
        for src, dst in ((a, b), (b, a)):
            _ip("-n", src.netns, "route", "add", "blackhole", f"{dst.address}/32")
            self._blackholes.append((src, dst.address))

    def unblackhole(self) -> None:
        for src, address in self._blackholes:
            _ip("-n", src.netns, "route", "del", "blackhole", f"{address}/32", check=False)
        self._blackholes.clear()

    def close(self) -> None:
        """Processes first (SIGTERM, grace, SIGKILL), then links, bridge and namespaces."""
        self._end_processes()
        for host in self.hosts:
            _ip("link", "del", host.veth, check=False)  # takes its peer in the namespace along
        for host in self.hosts:
            _ip("netns", "del", host.netns, check=False)
        _ip("link", "del", self.bridge, check=False)
        # Hosts whose creation failed half-way are not in self.hosts: sweep by token as well.
        for name in [n for n in _created if self.token in n]:
            if os.path.exists(f"/sys/class/net/{name}"):
                _ip("link", "del", name, check=False)
            if os.path.exists(f"/run/netns/{name}"):
                _ip("netns", "del", name, check=False)
            if not os.path.exists(f"/sys/class/net/{name}") and not os.path.exists(f"/run/netns/{name}"):
                _created.discard(name)
        self.hosts = []

    def _end_processes(self) -> None:
        procs = [p for h in self.hosts for p in h.procs]
        pids = {pid for h in self.hosts for pid in h.pids()} | {p.pid for p in procs if p.poll() is None}
        for sig, wait in ((signal.SIGTERM, TERM_GRACE), (signal.SIGKILL, KILL_WAIT)):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                for p in procs:
                    p.poll()  # reap ours, so they stop counting as alive
                pids = {pid for h in self.hosts for pid in h.pids()} | {
                    p.pid for p in procs if p.returncode is None}
                if not pids:
                    break
                time.sleep(0.05)
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(KILL_WAIT)


def _free_subnet() -> str:
    """A 10.213.X prefix no route of the root namespace uses (other clusters, other runs)."""
    used = set(re.findall(rf"{re.escape(SUBNET_PREFIX)}\.(\d+)\.", _ip("-4", "route").stdout))
    free = [x for x in range(1, 254) if str(x) not in used]
    if not free:
        raise NetnsUnavailable(f"every subnet of {SUBNET_PREFIX}.0.0/16 is in use")
    return f"{SUBNET_PREFIX}.{secrets.choice(free)}"


@contextlib.contextmanager
def cluster(n: int = 2) -> Iterator[list[Host]]:
    """``with cluster(2) as (a, b):`` two namespace hosts, torn down on exit."""
    with Cluster(n) as hosts:
        yield hosts
