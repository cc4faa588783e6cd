"""cascata: asynchronous, parallel, flow-based graph execution over ZeroMQ worker processes."""

from ._run.report import RunReport
from .component import Component, component, inport, outport, persist
from .errors import (
    AddressError,
    AuthenticationError,
    CascataError,
    ComponentError,
    DeadlockError,
    GraphError,
    HostLostError,
    ItemTooLargeError,
    KeyFileError,
    PlanRefusedError,
    PortTypeError,
    ProtocolError,
    SerializationError,
    WorkerLostError,
)
from .errors import (
    TimeoutError as TimeoutError,  # not in __all__: a star import must not shadow the builtin
)
from .graph import Graph
from .log import log

__version__ = "0.2.0"

__all__ = [
    "AddressError",
    "AuthenticationError",
    "CascataError",
    "Component",
    "ComponentError",
    "DeadlockError",
    "Graph",
    "GraphError",
    "HostLostError",
    "ItemTooLargeError",
    "KeyFileError",
    "PlanRefusedError",
    "PortTypeError",
    "ProtocolError",
    "RunReport",
    "SerializationError",
    "WorkerLostError",
    "component",
    "inport",
    "log",
    "outport",
    "persist",
]
