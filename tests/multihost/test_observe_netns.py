"""What a run shows covers remote workers too (issue 12): collected items, the run report, log
lines through the caller's ``logging`` handlers, the progress view and component errors, with
real daemons in hosts made of network namespaces (each with its own address; every namespace
reports the same machine name, so only the address tells hosts apart)."""

from __future__ import annotations

import logging
import os
import re
import textwrap

import pytest

from cascata import ComponentError, Graph, component, inport, log, outport
from tests.test_progress import ANSI, _run_in_pty

pytestmark = pytest.mark.slow

N = 400


@component
@inport("n")
@inport("tag", default="")
@outport("out")
async def Numbered(n, tag, out):
    """Sends (tag, 0), (tag, 1), ... (tag, n - 1)."""
    for i in range(n):
        await out.send((tag, i))


@component
@inport("x")
@outport("out")
async def Stamp(x, out):
    """Sends (tag, i, the pid that ran it): the pid tells which worker process passed it on."""
    tag, i = x
    await out.send((tag, i, os.getpid()))


@component
@inport("x")
async def Chatty(x):
    """Logs once through cascata's logger and once through a standard-library logger."""
    if x[1] == 0:
        log.info("hello from %s", x[0])
        logging.getLogger("observe2.lib").warning("stdlib says %d", x[1])


@component
@inport("x")
async def FailsOnThree(x):
    if x[1] == 3:
        raise RuntimeError("item three is bad")


def test_collect_and_report_cover_local_and_remote_workers(make_hosts, host_daemons, key_file):
    a, b = make_hosts(2)
    da, db = (d.address for d in host_daemons([a, b]))
    g = Graph()
    g.here = Numbered
    g.there = Numbered
    g.stamp = Stamp * 4
    g.here.n < N
    g.here.tag < "here"
    g.there.n < N
    g.there.tag < "there"
    g.here.out >> g.stamp.x
    g.there.out >> g.stamp.x
    g.remote = Stamp  # a lone component on a daemon, collected
    g.there.out >> g.remote.x
    spread = g.collect(g.stamp.out)
    alone = g.collect(g.remote.out)
    report = g.run(workers=["local", da, db], key_file=key_file,
                   pin={"here": "local", "there": da, "remote": db})

    # Every item, once (a ledger of what the sources sent), in order per publisher.
    assert sorted((t, i) for t, i, _ in spread) == sorted(
        [("here", i) for i in range(N)] + [("there", i) for i in range(N)])
    assert [(t, i) for t, i, _ in alone] == [("there", i) for i in range(N)]
    for pid in {p for _, _, p in spread}:
        for tag in ("here", "there"):
            seq = [i for t, i, p in spread if p == pid and t == tag]
            assert seq == sorted(seq), f"{tag} items out of order through pid {pid}"

    # The report: remote workers under their daemon's address with their own pid there.
    hosts = {w.index: w for w in report.workers.values()}
    by_component = {name: hosts[c.worker] for name, c in report.components.items()}
    assert by_component["there"].host == da and by_component["remote"].host == db
    assert by_component["here"].host == os.uname().nodename
    assert {w.host for w in hosts.values()} >= {da, db}
    assert {w.hostname for w in hosts.values()} == {os.uname().nodename}
    assert {p for _, _, p in alone} == {by_component["remote"].pid}
    assert {p for _, _, p in spread} <= {w.pid for w in hosts.values()}
    assert report.components["remote"].items_in == report.components["remote"].items_out == N
    assert sum(report.components[f"stamp_{k}"].items_in for k in range(4)) == 2 * N
    assert report.components["there"].items_out == N  # one send reaches the group and remote
    text = str(report)
    assert f"{by_component['remote'].index}: {db} pid {by_component['remote'].pid}" in text


def test_remote_log_lines_reach_the_callers_file_handler_tagged_with_component_and_host(
    make_hosts, host_daemons, key_file, tmp_path
):
    (a,) = make_hosts(1)
    da = host_daemons([a])[0].address
    path = tmp_path / "run.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(name)s|%(levelname)s|%(cascata_host)s|%(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)  # what logging.basicConfig(level=INFO) sets
    try:
        g = Graph()
        g.src = Numbered
        g.src.n < 5
        g.src.tag < "x"
        g.talk = Chatty
        g.src.out >> g.talk.x
        g.run(workers=[da], key_file=key_file)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()
    lines = path.read_text().splitlines()
    assert f"cascata|INFO|{da}|talk@Chatty: [{da}] hello from x" in lines
    assert f"observe2.lib|WARNING|{da}|talk@Chatty: [{da}] stdlib says 0" in lines


def test_a_component_error_on_a_namespace_host_names_the_component_and_its_address(
    make_hosts, host_daemons, key_file
):
    (a,) = make_hosts(1)
    da = host_daemons([a])[0].address
    g = Graph()
    g.src = Numbered
    g.src.n < 10
    g.bad = FailsOnThree
    g.src.out >> g.bad.x
    with pytest.raises(ComponentError, match="item three is bad") as info:
        g.run(workers=["local", da], key_file=key_file, pin={"bad": da})
    assert info.value.component == "bad@FailsOnThree"
    assert da in info.value.worker and da in str(info.value)
    assert "FailsOnThree" in info.value.traceback


PROGRESS = textwrap.dedent("""
    import asyncio
    from cascata import Graph, component, inport, outport

    @component
    @inport("n")
    @outport("out")
    async def Count(n, out):
        for i in range(n):
            await out.send(i)

    @component
    @inport("x")
    @outport("out")
    async def Slowly(x, out):
        await asyncio.sleep(0.002)
        await out.send(x)

    @component
    @inport("x")
    async def Drop(x):
        pass

    g = Graph()
    g.src = Count
    g.far = Slowly
    g.sink = Drop
    g.src.n < 300
    g.src.out >> g.far.x
    g.far.out >> g.sink.x
    g.run(workers=["local", {daemon!r}], key_file={key!r}, pin={{"far": {daemon!r}}})
    print("returned")
""")


def test_progress_shows_the_counts_of_a_component_on_a_namespace_host(
    make_hosts, host_daemons, key_file, tmp_path
):
    (a,) = make_hosts(1)
    da = host_daemons([a])[0].address
    code, stdout, terminal = _run_in_pty(tmp_path, PROGRESS.format(daemon=da, key=key_file))
    assert code == 0, terminal
    assert stdout.strip() == "returned"
    text = ANSI.sub("", terminal)
    final = text[text.rindex("done in"):]
    for label in ("src@Count", "far@Slowly", "sink@Drop"):
        assert re.search(rf"{label}\s+\d+\s+300\b", final), final
