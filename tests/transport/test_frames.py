"""The wire format, table-driven: what encodes must decode; what is malformed is named."""

import msgpack
import pytest

from cascata.errors import ProtocolError
from cascata.transport import frames as wire


def test_data_round_trip_keeps_bodies_and_buffers_per_item():
    msg = wire.encode_data(7, 42, [b"ab", b"", b"cde"], [[b"X" * 10], [], [b"Y", b"ZZ"]])
    out = wire.decode(msg)
    assert isinstance(out, wire.DataMsg)
    assert (out.edge, out.seq) == (7, 42)
    assert [bytes(b) for b in out.bodies] == [b"ab", b"", b"cde"]
    assert [[bytes(x) for x in bs] for bs in out.buffers] == [[b"X" * 10], [], [b"Y", b"ZZ"]]


def test_packed_batch_round_trip():
    msg = wire.encode_packed(4, 10, 3, b"body")
    out = wire.decode(msg)
    assert (out.edge, out.seq, out.count, bytes(out.packed)) == (4, 10, 3, b"body")
    assert out.bodies == []


def test_data_without_buffers_sends_no_oob_list():
    msg = wire.encode_data(1, 0, [b"a", b"b"], [[], []])
    assert len(msg) == 2
    assert msgpack.unpackb(msg[0])[6] == []
    out = wire.decode(msg)
    assert out.buffers == [[], []]


@pytest.mark.parametrize(
    ("frames", "kind", "fields"),
    [
        (wire.encode_eos(3, 10), wire.EosMsg, (3, 10)),
        (wire.encode_credit(5, 2), wire.CreditMsg, (5, 2)),
        (wire.encode_eos(0, 0), wire.EosMsg, (0, 0)),
    ],
)
def test_control_frames_round_trip(frames, kind, fields):
    out = wire.decode(frames)
    assert isinstance(out, kind)
    assert (out.edge, getattr(out, "total", getattr(out, "n", None))) == fields


def _hdr(*fields):
    return msgpack.packb(list(fields))


@pytest.mark.parametrize(
    ("frames", "match"),
    [
        ([], "empty message"),
        ([b"\xc1garbage"], "not valid msgpack"),
        ([msgpack.packb({"a": 1})], "header must be a list"),
        ([_hdr(99, wire.EOS, 1, 1)], "protocol version 99"),
        ([_hdr(wire.VERSION, 9, 1, 1)], "unknown message kind 9"),
        ([_hdr(wire.VERSION, wire.EOS, 1)], "EOS header has 3 fields"),
        ([_hdr(wire.VERSION, wire.EOS, -1, 1)], "edge must be a non-negative integer"),
        ([_hdr(wire.VERSION, wire.CREDIT, 1, "x")], "credit must be a non-negative integer"),
        ([_hdr(wire.VERSION, wire.EOS, 1, 1), b"extra"], "EOS message has 2 frames"),
        ([_hdr(wire.VERSION, wire.DATA, 1, 0, 1, [1], [])], "no body frame"),
        ([_hdr(wire.VERSION, wire.DATA, 1, 0, 1, [5], []), b"abc"], "lengths add up to 5"),
        ([_hdr(wire.VERSION, wire.DATA, 1, 0, 1, [1], [1]), b"a"], "oob counts say 1"),
        ([_hdr(wire.VERSION, wire.DATA, 1, 0, 2, [1, 1], [1]), b"ab", b"x"], "oob counts for 1"),
        ([_hdr(wire.VERSION, wire.DATA, 1, 0, 1, "no", []), b""], "lengths must be a list"),
        ([_hdr(wire.VERSION, wire.DATA, 1, True, 1, [], []), b""], "seq must be"),
        ([_hdr(wire.VERSION, wire.DATA, 1, 0, 3, [1], []), b"a"], "count 3 but 1 lengths"),
        ([_hdr(wire.VERSION, wire.DATA, 1, 0, 0, [], []), b"a"], "packed DATA message needs"),
        ([_hdr(wire.VERSION, wire.DATA, 1, 0, 1, [], []), b"a", b"b"], "packed DATA message needs"),
        ([_hdr(wire.VERSION, wire.DATA, 1, 0, 1, [1])], "DATA header has 6 fields"),
    ],
)
def test_malformed_frames_raise_protocol_error_saying_what(frames, match):
    with pytest.raises(ProtocolError, match=match):
        wire.decode(frames)
