"""Fixtures for tests over namespace hosts: ``make_hosts(n)``, and a check that nothing is left."""

from __future__ import annotations

import os

import pytest

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
