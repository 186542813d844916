"""WebSockets in the object model, driven directly: handlers' definitions, events, the registry, the outbox, limits."""

from __future__ import annotations

import json
import sqlite3
import uuid

import pytest

from solo import DurableObject, rpc
from solo.objects import websockets
from solo.objects.alarms import ALARM, FIRE_METHOD
from solo.objects.calls import BatchResult, Call
from solo.objects.coordination.gateways import split_by_gateway
from solo.objects.errors import DefinitionError
from solo.objects.naming import Address, new_call_id, object_id
from solo.objects.runtime.instance import ObjectInstance
from solo.objects.state.images import without_epoch_stamp
from solo.objects.state.wal import plain_file
from solo.objects.websockets import event_call, lost_event_id
from tests.objects import Room

GATEWAY = uuid.uuid4().hex


def define(prefix: str, **members) -> type[DurableObject]:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    return type(name, (DurableObject,), {"__module__": __name__, "__qualname__": name, **members})


@pytest.fixture
def room(tmp_path):
    """room(epoch=1, like=None): a hydrated Room on a fresh file, or on `like`'s file (a new owner)."""
    made: list[ObjectInstance] = []

    def open_(*, epoch: int = 1, like: ObjectInstance | None = None, hydrate: bool = True) -> ObjectInstance:
        name = like.name if like else uuid.uuid4().hex
        instance = ObjectInstance(
            Room,
            object_id=like.object_id if like else object_id("test", "Room", name),
            name=name,
            path=like.path if like else tmp_path / f"{name}.sqlite",
            epoch=epoch,
        )
        made.append(instance)
        if hydrate:
            instance.hydrate()
        return instance

    yield open_
    for instance in made:
        instance.close()


def address(instance: ObjectInstance) -> Address:
    return Address("Room", instance.name, instance.object_id)


def event(instance: ObjectInstance, socket_id: str, name: str, **fields) -> BatchResult:
    call = event_call(address(instance), socket_id, GATEWAY, name, new_call_id(), **fields)
    return instance.run_batch([call])


def connect(instance: ObjectInstance, user: str, **query: str) -> tuple[str, BatchResult]:
    socket_id = uuid.uuid4().hex
    result = event(instance, socket_id, "connect", request={"path": "/", "query": {"user": user, **query}})
    return socket_id, result


def texts(result: BatchResult) -> list[tuple[list[str], str]]:
    """(sockets, text) of each text message the batch released."""
    routed = [json.loads(m) for _, m in split_by_gateway(result.socket_messages)]
    return [(m["s"], m["d"]) for m in routed if m["k"] == "text"]


# -- definitions ------------------------------------------------------------------------


def test_socket_handlers_with_wrong_signatures_fail_at_definition_with_every_problem():
    with pytest.raises(DefinitionError) as failed:
        define(
            "BadSockets",
            web_socket_message=lambda self, ws: None,
            web_socket_close=lambda self, ws, code: None,
            web_socket_connect=rpc(lambda self, ws, request: None),
        )
    problems = "\n".join(failed.value.problems)
    assert "web_socket_message must take exactly the arguments ws, message" in problems
    assert "web_socket_close must take exactly the arguments ws, code, reason" in problems
    assert "web_socket_connect is a socket handler and cannot be @rpc" in problems


def test_websockets_is_a_reserved_name():
    with pytest.raises(DefinitionError, match="'websockets' is reserved"):
        define("Shadow", websockets=rpc(lambda self: None))


# -- events -----------------------------------------------------------------------------


def test_connect_registers_the_socket_with_its_tags_and_attachment_and_a_refusal_registers_nothing(room):
    instance = room()
    alice, result = connect(instance, "alice", greet="1")
    assert result.outcomes[0].ok and result.outcomes[0].result["accepted"]
    assert texts(result) == [([alice], "welcome alice")]
    _, refused = connect(instance, "mallory")
    assert refused.outcomes[0].error["code"] == "banned"
    assert refused.socket_messages == []
    (listed,) = instance.run_batch([_call(instance, "sockets")]).outcomes[0].result
    assert listed["id"] == alice and listed["tags"] == ["user:alice"]


def test_a_failing_handler_sends_nothing_and_its_writes_roll_back(room):
    instance = room()
    alice, _ = connect(instance, "alice")
    result = event(instance, alice, "message", text="fail now")
    assert not result.outcomes[0].ok
    assert result.socket_messages == []
    assert instance.run_batch([_call(instance, "log")]).outcomes[0].result == []


def test_a_broadcast_is_one_outgoing_message_for_every_socket_in_order(room):
    instance = room()
    alice, _ = connect(instance, "alice")
    bob, _ = connect(instance, "bob")
    result = instance.run_batch(
        [
            event_call(address(instance), alice, GATEWAY, "message", new_call_id(), text="one"),
            event_call(address(instance), bob, GATEWAY, "message", new_call_id(), text="two"),
        ]
    )
    assert len(result.socket_messages) == 2  # one row per broadcast, not per socket
    assert [(sorted(sockets), text) for sockets, text in texts(result)] == [
        (sorted([alice, bob]), "alice: one"),
        (sorted([alice, bob]), "bob: two"),
    ]
    numbers = [(m["e"], m["n"]) for m in map(json.loads, result.socket_messages)]
    assert numbers == sorted(numbers) and len(set(numbers)) == 2


def test_the_registry_and_unrouted_messages_survive_a_new_owner_and_keep_their_numbers(room):
    # Given a batch that sent a message which was never routed (its owner died after shipping)
    first = room()
    alice, _ = connect(first, "alice")
    lost = event(first, alice, "message", text="hello")
    first.close()
    # When another owner (a higher epoch) hydrates the same file
    second = room(epoch=2, like=first, hydrate=False)
    started = second.hydrate()
    # Then the message is released again with its first number, and the socket is still there
    assert started.socket_messages == lost.socket_messages
    assert [s.id for s in second.sockets.all()] == [alice]
    newer = event(second, alice, "message", text="again")
    (old,), (new,) = map(json.loads, lost.socket_messages), map(json.loads, newer.socket_messages)
    assert (old["e"], old["n"]) < (new["e"], new["n"])


def welcomes(instance: ObjectInstance) -> list[str]:
    return [m for _, m in instance.sockets.read_outbox() if "welcome" in m]


def test_routed_messages_are_kept_for_a_while_then_deleted_with_a_later_transaction(room):
    instance = room()
    now = [1_000_000]
    instance.clock_ms = lambda: now[0]
    alice, connected = connect(instance, "alice", greet="1")
    instance.ack_routed(connected.socket_seq)
    event(instance, alice, "count")
    assert len(welcomes(instance)) == 1  # a Redis restart could still lose the gateway's inbox
    now[0] += websockets.ROUTED_RETAIN_MS
    event(instance, alice, "count")
    assert welcomes(instance) == []


def test_a_resume_event_routes_the_kept_messages_again_in_order_with_its_batchs_own(room):
    instance = room()
    alice, connected = connect(instance, "alice", greet="1")
    instance.ack_routed(connected.socket_seq)
    call = event_call(address(instance), alice, GATEWAY, "resume", new_call_id())
    sent = _call(instance, "announce", text="after")
    result = instance.run_batch([call, sent])
    assert result.outcomes[0].ok
    assert [text for _, text in texts(result)] == ["welcome alice", "after"]


def test_a_new_owner_routes_the_leftovers_and_deletes_them_with_its_next_transaction(room):
    first = room()
    alice, _ = connect(first, "alice", greet="1")  # never routed: its owner died after shipping
    first.close()
    second = room(epoch=2, like=first, hydrate=False)
    released = second.hydrate()
    assert [text for _, text in texts(released)] == ["welcome alice"]
    second.ack_routed(released.socket_seq)
    event(second, alice, "count")
    assert welcomes(second) == []


def test_close_removes_the_socket_even_if_its_handler_fails_and_an_unknown_socket_is_closed(room):
    instance = room()
    alice, _ = connect(instance, "alice")
    result = event(instance, alice, "close", code=1001, reason="away")
    assert result.outcomes[0].ok
    assert instance.sockets.count() == 0
    stranger = uuid.uuid4().hex
    result = event(instance, stranger, "message", text="hi")
    (message,) = [json.loads(m) for _, m in split_by_gateway(result.socket_messages)]
    assert (message["k"], message["s"], message["c"]) == ("close", [stranger], 1011)


def test_an_alarm_sends_like_a_call(room):
    instance = room()
    alice, _ = connect(instance, "alice")
    instance.run_batch([_call(instance, "ring", at_ms=1000)])
    fired = instance.run_batch([_call(instance, FIRE_METHOD, name=ALARM, due_ms=1000)])
    assert texts(fired) == [([alice], "alarm at 1000")]


def test_an_event_id_runs_once(room):
    instance = room()
    alice, _ = connect(instance, "alice")
    call = event_call(address(instance), alice, GATEWAY, "message", new_call_id(), text="once")
    instance.run_batch([call])
    again = instance.run_batch([call])
    assert again.socket_messages == []
    assert instance.run_batch([_call(instance, "log")]).outcomes[0].result == ["alice: once"]


# -- limits -----------------------------------------------------------------------------


def test_limits_on_tags_attachments_messages_and_sockets(room, monkeypatch):
    instance = room()
    _, eleven_tags = connect(instance, "a", tags="10")
    assert eleven_tags.outcomes[0].error["code"] == "socket_limit"
    _, big_attachment = connect(instance, "a", pad=str(16 * 1024))
    assert big_attachment.outcomes[0].error["code"] == "socket_limit"
    bob, _ = connect(instance, "bob")
    assert event(instance, bob, "message", text="big").outcomes[0].error["code"] == "socket_limit"
    monkeypatch.setattr(websockets, "MAX_SOCKETS", 2)
    connect(instance, "carol")
    _, third = connect(instance, "dave")
    assert third.outcomes[0].error["code"] == "too_many_sockets"
    with pytest.raises(websockets.SocketLimitExceeded):
        websockets.check_tags(["x" * 257])


def test_an_imported_file_brings_no_sockets(room):
    instance = room()
    connect(instance, "alice", greet="1")
    instance.close()  # checkpointed: the whole state is in the file
    image = instance.path.read_bytes()
    assert b"welcome alice" in image
    conn = sqlite3.connect(":memory:")
    conn.deserialize(plain_file(without_epoch_stamp(image)))
    assert conn.execute("SELECT count(*) FROM _solo_sockets").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM _solo_socket_outbox").fetchone()[0] == 0


def test_the_close_event_of_a_dead_gateway_has_one_id_whoever_sends_it():
    assert lost_event_id(GATEWAY, "a" * 32) == lost_event_id(GATEWAY, "a" * 32) != lost_event_id(GATEWAY, "b" * 32)


def _call(instance: ObjectInstance, method: str, **args) -> Call:
    return Call(new_call_id(), instance.object_id, "Room", instance.name, method, args)
