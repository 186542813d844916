"""`solo` is the one import package, and its top level is exactly the user's surface."""

import solo
from solo.api.client import AsyncClient, CallError, Client
from solo.objects import errors
from solo.objects.alarms import AlarmInfo
from solo.objects.definition import DurableObject, rpc
from solo.objects.websockets import SocketRequest, WebSocket


def test_the_public_surface_is_pinned():
    assert solo.__all__ == [
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


def test_every_public_name_is_the_object_it_names():
    assert solo.DurableObject is DurableObject
    assert solo.rpc is rpc
    assert solo.AlarmInfo is AlarmInfo
    assert (solo.WebSocket, solo.SocketRequest) == (WebSocket, SocketRequest)
    assert (solo.Client, solo.AsyncClient, solo.CallError) == (Client, AsyncClient, CallError)
    for name in (
        "SoloError",
        "SqlNotAllowed",
        "SqlTooBig",
        "UserError",
        "RemoteCallError",
        "RemoteCallTimeout",
        "RemoteCallUnavailable",
        "CycleError",
    ):
        assert getattr(solo, name) is getattr(errors, name)


def test_errors_a_user_may_catch_derive_from_solo_error():
    for name in (
        "UserError",
        "RemoteCallError",
        "RemoteCallTimeout",
        "RemoteCallUnavailable",
        "CycleError",
        "SqlNotAllowed",
    ):
        assert issubclass(getattr(solo, name), solo.SoloError)


def test_solo_testing_offers_the_local_system():
    import solo.testing
    from solo.testing.clock import ManualClock
    from solo.testing.local import AsyncLocalSystem, LocalSystem

    assert solo.testing.__all__ == ["AsyncLocalSystem", "LocalSystem", "ManualClock"]
    assert (solo.testing.LocalSystem, solo.testing.AsyncLocalSystem) == (LocalSystem, AsyncLocalSystem)
    assert solo.testing.ManualClock is ManualClock
