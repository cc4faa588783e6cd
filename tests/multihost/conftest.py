"""Fixtures for tests over namespace hosts: ``make_hosts(n)``, and a check that nothing is left."""

from __future__ import annotations

import os

import pytest

from tests.daemons import DaemonProcess
from tests.multihost import netns


@pytest.fixture
def make_hosts():
    """``make_hosts(n)`` returns n namespace hosts, torn down after the test. Where namespaces
    cannot be made the test is skipped with the reason, except under CI=true, where it fails."""
    clusters: list[netns.Cluster] = []

    def make(n: int = 2) -> list[netns.Host]:
        try:
            cluster = netns.Cluster(n)
            clusters.append(cluster)
            cluster.start()
        except netns.NetnsUnavailable as exc:
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI needs network namespaces: {exc}")
            pytest.skip(f"no network namespaces here: {exc}")
        return cluster.hosts

    yield make
    for cluster in clusters:
        cluster.close()


@pytest.fixture(autouse=True)
def no_namespaces_left():
    yield
    left = netns.leftovers()
    assert not left, f"test left network namespaces or links behind: {left}"


# The port every namespace daemon listens on (each host has its own network stack).
DAEMON_PORT = 7700


@pytest.fixture
def host_daemons(key_file, make_hosts):
    """``host_daemons(hosts, **options)`` starts a ``cascata worker`` daemon in each namespace
    host, listening on its address; every one is stopped (SIGTERM, then SIGKILL) after the test,
    before the hosts are torn down."""
    started: list[DaemonProcess] = []

    def start(hosts, processes: int = 2, key: str | None = None, python=None) -> list[DaemonProcess]:
        new = [DaemonProcess(key or key_file, processes, listen=f"{h.address}:{DAEMON_PORT}",
                             wrap=h.argv, python=python) for h in hosts]
        started.extend(new)
        return new

    yield start
    for d in started:
        d.stop()
