"""Case 11 of the fault suite, for local worker data ports: a raw peer sends malformed messages
of every kind to a worker's data socket, each carrying a pickle that would create a file if
anything unpickled it. The run either delivers a perfect ledger or fails with a ProtocolError;
the file never appears."""

from __future__ import annotations

import os
import random
import time

import pytest

from cascata import ProtocolError

from .graphs import chain, started
from .ledger import check
from .tools import (
    MALFORMED_KINDS,
    RAW_MAX_ITEM_BYTES,
    RawPeer,
    data_endpoint,
    deadline,
    inbound_edge,
    malformed,
    raw_stream,
)

N = 300
# Seconds the raw peer's message gets to arrive before the real stream starts.
SETTLE = 0.2


def _go(flags):
    open(os.path.join(flags, "go"), "w").close()


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
def test_malformed_message_to_a_data_port_is_refused_unread(kind, ledger, flags, trap):
    g = chain(ledger, N, kind="bytes")
    g.src.hold < os.path.join(flags, "go")
    with started(g, 3, max_item_bytes=RAW_MAX_ITEM_BYTES):
        edge = inbound_edge(g, "sink")
        peer = RawPeer(data_endpoint(g, edge.dst_worker))
        try:
            peer.send(malformed(kind, edge.edge_id, trap))
            time.sleep(SETTLE)
            _go(flags)
            with deadline(f"11: malformed message ({kind}) to a data port") as t:
                t.started -= SETTLE  # the message went out before the pause
                # It reached the worker before the stream started (the handshake was done
                # before it was sent): refused, and the run fails, never a wrong ledger.
                with pytest.raises(ProtocolError) as info:
                    g.join()
        finally:
            peer.close()
    assert not os.path.exists(trap), "a message from the raw peer was unpickled"
    assert "malformed" in str(info.value) or "lost" in str(info.value)


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        random.Random(13).randbytes(64 * 1024),
        # a ZeroMQ 3 greeting (signature, version 3.0, NULL mechanism), then a frame header
        # that announces an absurd length
        b"\xff" + b"\0" * 8 + b"\x7f\x03\x00" + b"NULL" + b"\0" * 16 + b"\0" + b"\0" * 31
        + b"\x06" + (2**62).to_bytes(8, "big"),
    ],
    ids=["http", "random", "huge-frame"],
)
def test_plain_socket_writing_garbage_to_a_data_port_never_damages_the_ledger(
    data, ledger, flags, trap
):
    # libzmq takes a peer whose first byte is not 0xff for a ZMTP 1.0 peer and parses the rest
    # as messages, so random bytes may reach the worker as (malformed) messages.
    g = chain(ledger, N, kind="bytes")
    g.src.hold < os.path.join(flags, "go")
    with started(g, 3):
        endpoint = data_endpoint(g, inbound_edge(g, "sink").dst_worker)
        raw_stream(endpoint, data)
        _go(flags)
        try:
            g.join()
        except ProtocolError as exc:
            assert "malformed" in str(exc)
        else:
            check(ledger, {"p": N})


def test_an_end_of_stream_that_undercounts_what_was_sent_is_items_lost_when_the_run_ends():
    from cascata._run.compile import compile_plan
    from cascata._run.coordinator import lost_at_end
    from cascata.transport.control import Done

    plan = compile_plan(chain("/nowhere", 10), 3)
    edge = inbound_edge_of(plan, "sink")
    publisher = Done(stats={}, sent={edge.edge_id: 10})
    honest = Done(stats={}, ended={edge.edge_id: 10})
    forged = Done(stats={}, ended={edge.edge_id: 0})
    assert lost_at_end(plan, [publisher, honest]) is None
    error = lost_at_end(plan, [publisher, forged])
    assert isinstance(error, ProtocolError)
    assert str(error) == (
        "items lost on connection 'mid.out' -> 'sink.x': the publisher sent 10 items, the end "
        "of stream its consumer received said 0"
    )


def inbound_edge_of(plan, component):
    return next(e for e in plan.edges if e.dst_component == component)
