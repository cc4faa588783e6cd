"""CurveZMQ with a cluster key: real sockets over loopback TCP, real key files."""

from __future__ import annotations

import asyncio
import os
import pickle
import socket
import stat
import threading

import pytest
import zmq
import zmq.asyncio

from cascata.errors import AuthenticationError, HostLostError, KeyFileError
from cascata.transport.auth import (
    ClusterKey,
    HandshakeWatch,
    configure_client,
    configure_server,
    generate_key_file,
    load_key,
    start_authenticator,
)

# Seconds a handshake gets in these tests; on loopback one takes about a millisecond.
HANDSHAKE = 5.0


@pytest.fixture
def ctx():
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


@pytest.fixture
def key_path(tmp_path):
    path = tmp_path / "cluster.key"
    generate_key_file(path)
    return path


@pytest.fixture
def key(key_path):
    return load_key(key_path)


def other_key(tmp_path, name="other.key"):
    generate_key_file(tmp_path / name)
    return load_key(tmp_path / name)


def open_server(ctx, key):
    sock = ctx.socket(zmq.PULL)
    sock.linger = 0
    configure_server(sock, key)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    return sock, f"127.0.0.1:{port}"


def open_client(ctx, address, configure):
    sock = ctx.socket(zmq.PUSH)
    sock.linger = 0
    configure(sock)
    watch = HandshakeWatch(sock, address)
    sock.connect(f"tcp://{address}")
    return sock, watch


# --- the handshake ------------------------------------------------------------------------------


def test_right_key_passes_messages(ctx, key):
    with start_authenticator(ctx, key) as auth:
        server, address = open_server(ctx, key)
        client, watch = open_client(ctx, address, lambda s: configure_client(s, key))
        watch.wait(HANDSHAKE)
        client.send_multipart([b"header", b"x" * 100_000])
        assert server.poll(HANDSHAKE * 1000)
        assert server.recv_multipart() == [b"header", b"x" * 100_000]
        assert (auth.accepted, auth.refused) == (1, 0)
        watch.close()
        client.close()
        server.close()


def assert_refused(ctx, server, address, configure, match):
    """A client set up by ``configure`` fails its handshake with ``server``: the watch raises an
    error matching ``match`` and the message it sent never arrives."""
    client, watch = open_client(ctx, address, configure)
    client.send(b"must not arrive")
    with pytest.raises(AuthenticationError, match=match) as info:
        watch.wait(HANDSHAKE)
    assert not server.poll(200)
    watch.close()
    client.close()
    return info.value


def test_wrong_key_is_refused_and_detected_naming_the_address(ctx, key, tmp_path):
    wrong = other_key(tmp_path)
    with start_authenticator(ctx, key):
        server, address = open_server(ctx, key)
        error = assert_refused(ctx, server, address, lambda s: configure_client(s, wrong), "cluster key")
        assert error.address == address and address in str(error)
        server.close()


def test_server_key_with_bogus_client_keypair_is_refused_by_the_allow_list(ctx, key):
    public, secret = zmq.curve_keypair()

    def bogus(sock):
        sock.curve_serverkey = key.server_public  # the attacker knows the server's public key
        sock.curve_publickey = public
        sock.curve_secretkey = secret

    with start_authenticator(ctx, key) as auth:
        server, address = open_server(ctx, key)
        assert_refused(ctx, server, address, bogus, "refused this machine's key")
        assert auth.refused >= 1 and auth.accepted == 0
        server.close()


def test_without_an_authenticator_the_server_refuses_everyone(ctx, key):
    server, address = open_server(ctx, key)  # no start_authenticator: ZAP_ENFORCE_DOMAIN refuses
    assert_refused(ctx, server, address, lambda s: configure_client(s, key), "runs no authenticator")
    server.close()


def test_no_server_listening_is_a_lost_host_not_an_auth_error(ctx, key):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client, watch = open_client(ctx, f"127.0.0.1:{port}", lambda s: configure_client(s, key))
    with pytest.raises(HostLostError, match=f"127.0.0.1:{port}"):
        watch.wait(0.5)
    watch.close()
    client.close()


def test_a_server_without_curve_is_named_as_such(ctx, key):
    plain = ctx.socket(zmq.PULL)
    port = plain.bind_to_random_port("tcp://127.0.0.1")
    assert_refused(ctx, plain, f"127.0.0.1:{port}", lambda s: configure_client(s, key),
                   "does not use CurveZMQ")
    plain.close(linger=0)


def test_check_never_blocks_and_reports_on_an_asyncio_loop(key, tmp_path):
    wrong = other_key(tmp_path)
    actx = zmq.asyncio.Context()

    async def main():
        auth = start_authenticator(actx, key)
        server = actx.socket(zmq.PULL)
        configure_server(server, key)
        port = server.bind_to_random_port("tcp://127.0.0.1")
        good, bad = actx.socket(zmq.PUSH), actx.socket(zmq.PUSH)
        configure_client(good, key)
        configure_client(bad, wrong)
        good_watch = HandshakeWatch(good, "good")
        bad_watch = HandshakeWatch(bad, "bad")
        for sock in (good, bad):
            sock.connect(f"tcp://127.0.0.1:{port}")
        await good.send(b"hello")
        assert await asyncio.wait_for(server.recv(), HANDSHAKE) == b"hello"
        assert good_watch.check()
        failure = None
        for _ in range(int(HANDSHAKE / 0.02)):
            try:
                bad_watch.check()
            except AuthenticationError as exc:
                failure = exc
                break
            await asyncio.sleep(0.02)
        for w in (good_watch, bad_watch):
            w.close()
        for s in (good, bad, server):
            s.close(linger=0)
        auth.stop()
        return failure

    try:
        failure = asyncio.run(main())
    finally:
        actx.term()
    assert failure is not None and failure.address == "bad"


def test_plain_sockets_of_the_same_context_are_not_asked_for_keys(ctx, key, tmp_path):
    # Worker processes keep NULL-mechanism ipc links next to CURVE tcp ones in one context.
    with start_authenticator(ctx, key) as auth:
        pull = ctx.socket(zmq.PULL)
        push = ctx.socket(zmq.PUSH)
        pull.bind(f"ipc://{tmp_path}/plain.ipc")
        push.connect(f"ipc://{tmp_path}/plain.ipc")
        push.send(b"local")
        assert pull.poll(HANDSHAKE * 1000) and pull.recv() == b"local"
        assert (auth.accepted, auth.refused) == (0, 0)
        push.close(linger=0)
        pull.close(linger=0)


# --- the authenticator thread -------------------------------------------------------------------


def test_authenticator_runs_in_a_named_thread_and_stops(ctx, key):
    auth = start_authenticator(ctx, key)
    assert "cascata-zap" in [t.name for t in threading.enumerate()]
    auth.stop()
    assert not auth.running
    assert "cascata-zap" not in [t.name for t in threading.enumerate()]
    auth.stop()  # twice is harmless


def test_after_stop_the_server_admits_nobody(ctx, key):
    start_authenticator(ctx, key).stop()
    server, address = open_server(ctx, key)
    client, watch = open_client(ctx, address, lambda s: configure_client(s, key))
    with pytest.raises(AuthenticationError):
        watch.wait(1.0)
    watch.close()
    client.close()
    server.close()


def test_one_authenticator_per_context(ctx, key):
    with start_authenticator(ctx, key):
        with pytest.raises(AuthenticationError, match="one per context"):
            start_authenticator(ctx, key)


# --- key files ----------------------------------------------------------------------------------


def test_keygen_writes_a_fresh_owner_only_key(tmp_path):
    old = os.umask(0)
    try:
        generate_key_file(tmp_path / "a.key")
    finally:
        os.umask(old)
    generate_key_file(tmp_path / "b.key")
    assert stat.S_IMODE(os.stat(tmp_path / "a.key").st_mode) == 0o600
    assert load_key(tmp_path / "a.key") == load_key(tmp_path / "a.key")
    assert load_key(tmp_path / "a.key") != load_key(tmp_path / "b.key")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.key", "b.key"]  # no temporary left


def test_keygen_never_overwrites(key_path):
    before = key_path.read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        generate_key_file(key_path)
    assert key_path.read_bytes() == before


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620])
def test_key_file_open_to_others_is_refused_with_the_chmod(key_path, mode):
    os.chmod(key_path, mode)
    with pytest.raises(KeyFileError) as info:
        load_key(key_path)
    assert f"chmod 600 {key_path}" in str(info.value)
    assert info.value.path == str(key_path)


def test_missing_key_file_says_how_to_make_one(tmp_path):
    missing = tmp_path / "nope.key"
    with pytest.raises(KeyFileError, match="does not exist") as info:
        load_key(missing)
    assert f"cascata keygen {missing}" in str(info.value)


def write_key_file(path, content: bytes):
    path.write_bytes(content)
    os.chmod(path, 0o600)
    return path


def test_short_key_is_refused(tmp_path):
    path = write_key_file(tmp_path / "short.key", b"00" * 16 + b"\n")
    with pytest.raises(KeyFileError, match="holds a 16-byte key; at least 32"):
        load_key(path)


@pytest.mark.parametrize("content", [b"", b"not hex at all, hunter2 hunter2 hunter2 hunter2 hunter2\n",
                                     b"\xff\xfe" * 40])
def test_malformed_key_is_refused_without_showing_it(tmp_path, content):
    path = write_key_file(tmp_path / "bad.key", content)
    with pytest.raises(KeyFileError, match="cascata keygen") as info:
        load_key(path)
    assert "hunter2" not in str(info.value)


def test_a_directory_is_not_a_key_file(tmp_path):
    folder = tmp_path / "dir.key"
    folder.mkdir(mode=0o700)
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_key(folder)


def test_hand_written_hex_key_is_accepted(tmp_path):
    path = write_key_file(tmp_path / "hand.key", b"  " + b"ab" * 48 + b"\n\n")
    assert isinstance(load_key(path), ClusterKey)


def test_key_file_errors_survive_pickling(tmp_path):
    with pytest.raises(KeyFileError) as info:
        load_key(tmp_path / "nope.key")
    again = pickle.loads(pickle.dumps(info.value))
    assert isinstance(again, AuthenticationError)
    assert (again.path, str(again)) == (info.value.path, str(info.value))
    auth = pickle.loads(pickle.dumps(AuthenticationError("refused", address="h:1")))
    assert (auth.address, str(auth)) == ("h:1", "refused")


# --- derived keys -------------------------------------------------------------------------------


def test_derived_keys_are_curve_keypairs(key):
    assert zmq.curve_public(key.server_secret) == key.server_public
    assert zmq.curve_public(key.client_secret) == key.client_public
    keys = {key.server_public, key.server_secret, key.client_public, key.client_secret}
    assert len(keys) == 4 and all(len(k) == 40 for k in keys)


def test_secrets_never_show_and_never_pickle(key, key_path):
    raw = key_path.read_text().strip()
    for text in (repr(key), str(key), f"{key}", repr([key])):
        assert raw not in text
        assert key.server_secret.decode() not in text and key.client_secret.decode() not in text
        assert key.fingerprint in text
    with pytest.raises(TypeError, match="never pickled"):
        pickle.dumps({"plan": key})
