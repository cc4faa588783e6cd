"""transport.sockets: the one place sockets are opened; ZMQError leaves it as AddressError."""

import pickle

import pytest
import zmq

from cascata.errors import AddressError
from cascata.transport import sockets


@pytest.fixture
def ctx():
    ctx = zmq.Context()
    yield ctx
    ctx.term()


def test_bind_to_an_ephemeral_tcp_port_returns_the_port_chosen(ctx):
    pull = sockets.open_data_pull(ctx)
    push = sockets.open_data_push(ctx)
    try:
        endpoint = sockets.bind(pull, "tcp://127.0.0.1:*")
        assert endpoint.startswith("tcp://127.0.0.1:") and not endpoint.endswith("*")
        sockets.connect(push, endpoint)
        push.send(b"x")
        assert pull.poll(5000) and pull.recv() == b"x"
    finally:
        sockets.close(push)
        sockets.close(pull)


def test_an_address_in_use_is_an_address_error_naming_it(ctx):
    first = sockets.open_control_router(ctx)
    second = sockets.open_control_router(ctx)
    try:
        endpoint = sockets.bind(first, "tcp://127.0.0.1:*")
        with pytest.raises(AddressError, match="already in use") as info:
            sockets.bind(second, endpoint)
        assert info.value.address == endpoint and endpoint in str(info.value)
        assert isinstance(info.value.__cause__, zmq.ZMQError)
        again = pickle.loads(pickle.dumps(info.value))
        assert (again.address, str(again)) == (endpoint, str(info.value))
    finally:
        sockets.close(first)
        sockets.close(second)


@pytest.mark.parametrize("endpoint", ["nonsense", "tcp://127.0.0.1:notaport"])
def test_a_malformed_endpoint_is_an_address_error(ctx, endpoint):
    sock = sockets.open_control_dealer(ctx, b"w0")
    try:
        with pytest.raises(AddressError, match="cannot be used"):
            sockets.connect(sock, endpoint)
        with pytest.raises(ValueError):  # AddressError is also a ValueError
            sockets.bind(sock, endpoint)
    finally:
        sockets.close(sock)
