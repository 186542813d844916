"""solo: durable objects for Python, self-hosted.

Everything a user's code needs is here::

    from solo import DurableObject, UserError, rpc

    class Counter(DurableObject):
        @rpc
        def increment(self, by: int = 1) -> int:
            ...

The rest of the package is solo's own: `solo.objects` (the object model and the
machinery that runs it), `solo.api` (HTTP), `solo.workers` (worker processes),
`solo.cli` (the `solo` command) and `solo.examples`.
"""

from solo.api.client import AsyncClient, Client
from solo.api.errors import CallError
from solo.objects.alarms import AlarmInfo
from solo.objects.definition import DurableObject, rpc
from solo.objects.errors import (
    CycleError,
    RemoteCallError,
    RemoteCallTimeout,
    RemoteCallUnavailable,
    SoloError,
    SqlNotAllowed,
    SqlTooBig,
    UserError,
)
from solo.objects.websockets import SocketRequest, WebSocket

__all__ = [
    "AlarmInfo",
    "AsyncClient",
    "CallError",
    "Client",
    "CycleError",
    "DurableObject",
    "RemoteCallError",
    "RemoteCallTimeout",
    "RemoteCallUnavailable",
    "SocketRequest",
    "SoloError",
    "SqlNotAllowed",
    "SqlTooBig",
    "UserError",
    "WebSocket",
    "rpc",
]
