"""Typed control records: every kind survives the wire; anything malformed is a ProtocolError."""

import msgpack
import pytest

from cascata.errors import ProtocolError
from cascata.transport import control

RECORDS = [
    control.Ready(endpoint="ipc:///tmp/x/d0", pid=12),
    control.Heartbeat(worker=3),
    control.Log(level="INFO", component=["a", "A"], message="hi"),
    control.Error(error=b"\x80\x04pickled"),
    control.Done(stats={"a": {"firings": 1}}),
    control.Snapshot(probe=4, events=10, sent=3, received=3, idle=True, waits=[["a@A", "in", "p"]]),
    control.Go(peers={0: "ipc:///a", 1: "tcp://127.0.0.1:5000"}),
    control.Probe(probe=7),
    control.EndAll(),
    control.Finish(),
    control.Abort(),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.KIND)
def test_every_record_round_trips_with_its_type_and_fields(record):
    assert control.decode(record.encode()) == record


@pytest.mark.parametrize(
    ("frame", "found"),
    [
        (b"\xc1garbage", "malformed control message"),
        (msgpack.packb([control.PROTOCOL - 1, "probe", {"probe": 1}]), "control protocol"),
        (msgpack.packb([control.PROTOCOL, "nonsense", {}]), "kind 'nonsense'"),
        (msgpack.packb([control.PROTOCOL, "probe", {"wrong": 1}]), "'probe'"),
        (msgpack.packb([control.PROTOCOL, "probe", [1]]), "kind 'probe'"),
    ],
)
def test_malformed_control_frames_raise_protocol_error_saying_what(frame, found):
    with pytest.raises(ProtocolError, match=found):
        control.decode(frame)


def test_worker_ids_name_their_control_and_heartbeat_identities():
    wid = control.WorkerId(12)
    assert control.WorkerId.parse(wid.control) == wid == control.WorkerId.parse(wid.heartbeat)
    assert str(wid) == "worker-12"
    for raw in (b"", b"w", b"x1", b"w1a", b"12"):
        with pytest.raises(ProtocolError, match="identity"):
            control.WorkerId.parse(raw)
