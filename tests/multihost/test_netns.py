"""The namespace host builder itself: hosts reach each other over their addresses only, faults
behave as named, and teardown leaves nothing."""

from __future__ import annotations

import subprocess
import sys

import psutil
import pytest

from tests.helpers import poll_for
from tests.multihost import netns

pytestmark = pytest.mark.slow

ECHO_SERVER = """
import socket, sys
s = socket.socket()
s.bind((sys.argv[1], 0))
s.listen()
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    c.sendall(c.recv(100))
    c.close()
"""

CLIENT = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])) as c:
        c.sendall(b"hello")
        print(c.recv(100).decode())
except OSError as exc:
    print(type(exc).__name__, exc)
"""


def start_echo(host):
    proc = host.popen([sys.executable, "-c", ECHO_SERVER, host.address], stdout=subprocess.PIPE, text=True)
    return proc, int(proc.stdout.readline())


def ask(host, address, port, timeout=5.0):
    """What a TCP client in ``host`` gets back from an echo at ``address:port``."""
    done = host.run([sys.executable, "-c", CLIENT, address, str(port), str(timeout)])
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_two_hosts_talk_tcp_over_their_addresses(make_hosts):
    a, b = make_hosts(2)
    assert a.address != b.address and a.address.startswith("10.213.")
    server, port = start_echo(b)
    assert ask(a, b.address, port) == "hello"
    assert ask(b, b.address, port) == "hello"
    # The server listens on b's address only: inside a, nothing listens there.
    assert "ConnectionRefusedError" in ask(a, a.address, port)
    server.stdout.close()


def test_each_host_has_its_own_network_stack(make_hosts):
    a, b = make_hosts(2)
    inode = "import os; print(os.stat('/proc/self/ns/net').st_ino)"
    assert int(a.run([sys.executable, "-c", inode]).stdout) == a.netns_inode
    assert int(b.run([sys.executable, "-c", inode]).stdout) == b.netns_inode
    assert a.netns_inode != b.netns_inode
    addresses = a.run(["ip", "-o", "-4", "addr"]).stdout
    assert a.address in addresses and b.address not in addresses and "127.0.0.1" in addresses


def test_a_cut_host_goes_silent_and_comes_back(make_hosts):
    a, b = make_hosts(2)
    server, port = start_echo(b)
    b.cut()
    assert "timed out" in ask(a, b.address, port, timeout=0.5)  # silence, not a refusal
    b.restore()
    assert ask(a, b.address, port) == "hello"
    server.stdout.close()


def test_a_blackhole_parts_two_hosts_only(make_hosts):
    a, b, c = make_hosts(3)
    server, port = start_echo(b)
    a.cluster.blackhole(a, b)
    assert ask(a, b.address, port, timeout=0.5) != "hello"
    assert ask(c, b.address, port) == "hello"
    a.cluster.unblackhole()
    assert ask(a, b.address, port) == "hello"
    server.stdout.close()


def test_kill_ends_a_process_in_a_host(make_hosts):
    (a,) = make_hosts(1)
    proc = a.popen(["sleep", "600"])
    # `ip netns exec` enters the namespace after Popen returned: wait for it to get there.
    poll_for(lambda: proc.pid in a.pids())
    a.kill(proc)
    assert proc.returncode is not None and proc.pid not in a.pids()


def test_teardown_ends_processes_and_removes_every_name():
    with netns.Cluster(2) as hosts:
        cluster = hosts[0].cluster
        hosts[0].popen(["sleep", "600"])
        # A grandchild the test never saw: found through the namespace, not the Popen.
        hosts[1].popen(["sh", "-c", "sleep 600 & wait"])
        names = [cluster.bridge] + [h.netns for h in hosts] + [h.veth for h in hosts]
        # `ip netns exec` enters the namespace after Popen returns, and sh starts its sleep
        # later still: wait for all three (a single look once saw two, under load).
        pids = poll_for(lambda: (p := [pid for h in hosts for pid in h.pids()]) and len(p) == 3 and p)
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert not [n for n in names if n in namespaces or n in links]
    assert not netns.leftovers()
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_parallel_clusters_get_distinct_subnets(make_hosts):
    a, _ = make_hosts(2)
    c, _ = make_hosts(2)
    assert a.address.rsplit(".", 1)[0] != c.address.rsplit(".", 1)[0]
    assert a.cluster.token != c.cluster.token
