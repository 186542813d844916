"""Calls between objects: waiting calls, errors, cycles, sends after commit, re-runs that send once."""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from solo import DurableObject, rpc
from solo.objects.calls import BatchResult, Call, Outcome
from solo.objects.coordination.keys import Keys
from solo.objects.errors import (
    CycleError,
    InvalidArguments,
    InvalidName,
    RemoteCallError,
    RemoteCallUnavailable,
    SoloError,
    UnknownClass,
    UnknownMethod,
)
from solo.objects.naming import idempotent_call_id, new_call_id, object_id
from solo.objects.remote import derived_call_id
from solo.objects.runtime.instance import ObjectInstance, recorded_outcomes
from tests.harness import InProcessSystem
from tests.objects import Relay, Tally


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def system(settings, redis_client, async_redis_client):
    return InProcessSystem(settings, redis_client, async_redis_client)


def post(http, address: str, method: str, /, **body):
    return http.post(f"/v1/objects/{address}/{method}", json=body)


def result(http, address: str, method: str, /, **body):
    response = post(http, address, method, **body)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def eventually(check, timeout_s: float = 5.0):
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


# -- waiting calls -------------------------------------------------------------------


def test_an_object_calls_another_and_gets_its_result(system):
    a, t = f"Relay/{fresh('a')}", f"Tally/{fresh('t')}"
    with system.running() as http:
        assert result(http, a, "ask", target=t, method="add", args={"tag": "x"}) == 1
        assert result(http, a, "ask", target=t, method="add", args={"tag": "y"}) == 2
        assert result(http, t, "tags") == ["x", "y"]
        # and a chain of waiting calls through three objects
        b, c = f"Relay/{fresh('b')}", f"Relay/{fresh('c')}"
        assert result(http, a, "hop", route=[b, c]) == [a, b, c]


def test_waiting_callers_do_not_starve_the_objects_they_wait_on_of_threads(settings, redis_client, async_redis_client):
    # Given a worker with a single drain thread
    system = InProcessSystem(settings.with_changes(worker_threads=1), redis_client, async_redis_client)
    names = [f"Relay/{fresh(str(i))}" for i in range(4)]
    with system.running() as http:
        # When a call waits on a chain of three more objects of the same worker
        started = time.monotonic()
        path = result(http, names[0], "hop", route=names[1:])
    # Then each waiting drain lent its thread to the next object: no wait ran into its timeout
    assert path == names
    assert time.monotonic() - started < 5


def test_an_error_in_the_target_surfaces_in_the_caller_as_remote_call_error(system):
    a, t = f"Relay/{fresh('a')}", f"Tally/{fresh('t')}"
    with system.running() as http:
        # The caller can catch it
        caught = result(http, a, "ask_safely", target=t, method="crash")
        assert caught == {
            "error": {"code": "method_error", "message": f"{t}.crash failed: tally crashed", "type": "RemoteCallError"}
        }
        # Uncaught, the HTTP caller of the caller sees the target's error, named
        response = post(http, a, "ask", target=t, method="crash")
        assert response.status_code == 500
        assert response.json()["error"]["code"] == "method_error"
        assert response.json()["error"]["message"] == f"{t}.crash failed: tally crashed"
        assert response.json()["error"]["type"] == "RemoteCallError"
        # A UserError of the target keeps its code and status
        response = post(http, a, "ask", target=t, method="refuse", args={"why": "sold out"})
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "refused"
        assert response.json()["error"]["message"] == f"{t}.refuse failed: sold out"
        # The failed calls changed nothing in the target
        assert result(http, t, "total") == 0


def test_bad_calls_between_objects_are_refused_at_once_and_send_nothing(system):
    a, t = f"Relay/{fresh('a')}", f"Tally/{fresh('t')}"
    with system.running() as http:
        for target, method, args, code in [
            ("Nope/x", "add", {}, "unknown_class"),
            (t, "nope", {}, "unknown_method"),
            (t, "add", {"tag": 5}, "invalid_arguments"),
            (t, "add", {"tag": "x", "extra": 1}, "invalid_arguments"),
            ("Tally/ padded ", "add", {}, "invalid_name"),
        ]:
            response = post(http, a, "ask", target=target, method=method, args=args)
            assert response.json()["error"]["code"] == code, (target, method, response.text)
        assert result(http, t, "total") == 0


def test_a_call_that_gets_no_result_in_time_raises_a_timeout(system):
    a, f = f"Relay/{fresh('a')}", f"Fragile/{fresh('f')}"
    with system.running() as http:
        started = time.monotonic()
        caught = result(http, a, "ask_safely", target=f, method="slow", args={"ms": 1500}, timeout_s=0.2)
        assert time.monotonic() - started < 1.4
        assert caught["error"]["code"] == "remote_call_timeout"
        assert caught["error"]["type"] == "RemoteCallTimeout"
        # The call itself still ran
        assert result(http, f, "slow", ms=0) == 0


# -- cycles ------------------------------------------------------------------------------


def test_a_cycle_between_two_objects_fails_fast_with_the_cycle_named(system):
    a, b = f"Relay/{fresh('a')}", f"Relay/{fresh('b')}"
    with system.running() as http:
        # When A calls B, which calls A back while A waits
        started = time.monotonic()
        response = post(http, a, "hop", route=[b, a])
        elapsed = time.monotonic() - started

        # Then the call fails at once (the call timeout is 10 s), naming the cycle
        assert elapsed < 2, elapsed
        error = response.json()["error"]
        assert error["code"] == "call_cycle", error
        assert error["type"] == "CycleError"
        assert f"{a} -> {b} -> {a}" in error["message"]
        assert response.status_code >= 400
        # and both objects keep serving; the failed calls left nothing behind
        assert result(http, a, "log") == []
        assert result(http, b, "log") == []
        assert result(http, a, "hop", route=[b]) == [a, b]


def test_calling_yourself_or_a_longer_cycle_is_named_too(system):
    a, b, c = f"Relay/{fresh('a')}", f"Relay/{fresh('b')}", f"Relay/{fresh('c')}"
    with system.running() as http:
        error = post(http, a, "hop", route=[a]).json()["error"]
        assert error["code"] == "call_cycle" and f"{a} -> {a}" in error["message"]

        # A -> B -> C -> B: the cycle is B -> C -> B; B catches it and reports it as a value
        error = post(http, a, "hop", route=[b, c, b]).json()["error"]
        assert f"{b} -> {c} -> {b}" in error["message"]
        assert f"{a} ->" not in error["message"]

        caught = result(http, b, "ask_safely", target=a, method="hop", args={"route": [b]})
        assert caught["error"]["type"] == "CycleError"
        assert f"{b} -> {a} -> {b}" in caught["error"]["message"]


# -- sends -------------------------------------------------------------------------------


def test_send_delivers_after_the_callers_commit_and_a_failing_caller_sends_nothing(system):
    a, t = f"Relay/{fresh('a')}", f"Tally/{fresh('t')}"
    with system.running() as http:
        # When a call sends three calls and succeeds
        assert result(http, a, "tell", target=t, tags=["one", "two", "three"]) == 3
        # Then they were queued before its reply: the target's next call finds them run, in order
        assert result(http, t, "tags") == ["one", "two", "three"]

        # When a call sends and then fails
        response = post(http, a, "tell", target=t, tags=["never"], fail=True)
        assert response.status_code == 500
        # Then nothing was sent, and its own writes are gone
        assert result(http, t, "tags") == ["one", "two", "three"]
        assert result(http, a, "log") == [f"told {t} ['one', 'two', 'three']"]
        # and the sent entries are deleted from the outbox once delivered
        owned = system.host._owned[object_id(system.settings.namespace, "Relay", a.split("/", 1)[1])]
        assert eventually(lambda: owned.activation.instance.pending_outbox() == [])


def test_a_caller_run_again_with_the_same_call_id_sends_once(system, redis_client):
    relay, tally = fresh("r"), fresh("t")
    a, t = f"Relay/{relay}", f"Tally/{tally}"
    keys = Keys(system.settings.key_prefix)
    caller_call = idempotent_call_id(object_id(system.settings.namespace, "Relay", relay), "tell-once")
    with system.running() as http:
        # Given a call that sent one call
        headers = {"Idempotency-Key": "tell-once"}
        first = http.post(f"/v1/objects/{a}/tell", json={"target": t, "tags": ["x"]}, headers=headers)
        assert first.json()["call_id"] == caller_call
        assert result(http, t, "total") == 1

        # When the same call id arrives again: answered from its record, nothing sent again
        again = http.post(f"/v1/objects/{a}/tell", json={"target": t, "tags": ["x"]}, headers=headers)
        assert again.status_code == 200 and again.json()["result"] == 1

        # When its commit is lost (record gone everywhere) and it really runs again
        result(http, a, "forget_call", call_id=caller_call)
        redis_client.delete(keys.call(caller_call), keys.call(derived_call_id(caller_call, 0)))
        rerun = http.post(f"/v1/objects/{a}/tell", json={"target": t, "tags": ["x"]}, headers=headers)
        assert rerun.status_code == 200
        assert result(http, a, "log") == [f"told {t} ['x']"] * 2  # it did run twice

        # Then the target ran the sent call once: the re-run sent the same call id
        assert result(http, t, "tags") == ["x"]


def test_sends_committed_by_an_owner_that_failed_before_sending_are_sent_by_the_next_activation(system):
    a, t = f"Relay/{fresh('a')}", f"Tally/{fresh('t')}"
    transport = system.host.transport
    real_send, failures = transport.send, []

    def send_fails_once(call):
        if call.args["tag"] == "y" and not failures:  # "x" has gone out already
            failures.append(call.call_id)
            raise redis.ConnectionError("Redis went away after the commit")
        real_send(call)

    with system.running() as http:
        transport.send = send_fails_once
        # When the owner commits and ships a call that sent two calls, then fails after sending one
        started = time.monotonic()
        assert result(http, a, "tell", target=t, tags=["x", "y"]) == 2
        # Then the call was answered by the next activation (after the backoff), which sent both
        # committed entries again under the same ids: each ran exactly once, in order
        assert failures and time.monotonic() - started < 8
        assert result(http, t, "tags") == ["x", "y"]
        assert result(http, a, "log") == [f"told {t} ['x', 'y']"]


# -- the instance alone: outbox, ids, chains --------------------------------------------


class Sender(DurableObject):
    migrations = ["CREATE TABLE done (n INTEGER)"]

    def on_start(self) -> None:
        if self.name.startswith("greets"):
            self.objects.get("Tally", "greeted").send.add(tag=self.name)

    @rpc
    def fan_out(self, count: int, fail: bool = False) -> int:
        for i in range(count):
            self.objects.get("Tally", f"t{i}").send("add", tag=str(i))
        self.sql.execute("INSERT INTO done VALUES (?)", (count,))
        if fail:
            raise RuntimeError("after sending")
        return count

    @rpc
    def wait_on(self, target: str) -> int:
        return self.objects.get("Tally", target).total()

    @rpc
    def wait_and_swallow(self, target: str) -> str:
        self.sql.execute("INSERT INTO done VALUES (-1)")
        try:
            return str(self.objects.get("Tally", target).total())
        except RemoteCallError as exc:
            return exc.code

    @rpc
    def bad_target(self, kind: str) -> None:
        if kind == "class":
            self.objects.get("NoSuchClass", "x")
        elif kind == "name":
            self.objects.get("Tally", "a/b")
        elif kind == "method":
            self.objects.get("Tally", "x").send.no_such_method()
        else:
            self.objects.get("Tally", "x").send("add", tag=object())


def _hydrated(tmp_path, name: str, epoch: int = 1, transport=None) -> tuple[ObjectInstance, BatchResult]:
    instance = ObjectInstance(
        Sender,
        object_id=object_id("test", "Sender", name),
        name=name,
        path=tmp_path / f"{name}.sqlite",
        epoch=epoch,
        namespace="test",
        transport=transport,
    )
    return instance, instance.hydrate()


def _instance(tmp_path, name: str, epoch: int = 1, transport=None) -> ObjectInstance:
    return _hydrated(tmp_path, name, epoch, transport)[0]


def _call(instance: ObjectInstance, method: str, call_id: str | None = None, chain=(), **args) -> Call:
    return Call(call_id or new_call_id(), instance.object_id, "Sender", instance.name, method, args, chain=list(chain))


def test_sends_are_written_to_the_outbox_with_ids_derived_from_the_call_and_only_if_it_succeeds(tmp_path):
    instance = _instance(tmp_path, "s1")
    ok, failing = _call(instance, "fan_out", count=2), _call(instance, "fan_out", count=3, fail=True)
    batch = instance.run_batch([ok, failing])
    assert [o.ok for o in batch.outcomes] == [True, False]

    sent = batch.sends
    assert [c.call_id for c in sent] == [derived_call_id(ok.call_id, 0), derived_call_id(ok.call_id, 1)]
    assert [(c.class_name, c.object_name, c.method, c.args) for c in sent] == [
        ("Tally", "t0", "add", {"tag": "0"}),
        ("Tally", "t1", "add", {"tag": "1"}),
    ]
    assert sent[0].object_id == object_id("test", "Tally", "t0")
    assert all(c.chain == [] and c.reply_to is None for c in sent)  # nobody waits on a sent call
    assert instance.pending_outbox() == sent  # committed with the batch
    assert instance.run_batch([_call(instance, "fan_out", count=0)]).sends == []  # each released once

    # Acknowledged entries are deleted by the next transaction
    instance.ack_outbox([c.call_id for c in sent])
    instance.flush_outbox()
    assert instance.pending_outbox() == []
    instance.close()


def test_entries_left_by_a_crash_after_commit_are_sent_again_at_hydrate(tmp_path):
    first = _instance(tmp_path, "s2")
    expected = first.run_batch([_call(first, "fan_out", count=2)]).sends
    first.close()  # died before sending: the entries are still in the file

    again, started = _hydrated(tmp_path, "s2", epoch=2)
    assert started.sends == expected
    again.close()


def test_on_start_may_send_and_its_sends_commit_with_it(tmp_path):
    instance, started = _hydrated(tmp_path, "greets-1")
    (sent,) = started.sends
    assert (sent.class_name, sent.object_name, sent.args) == ("Tally", "greeted", {"tag": "greets-1"})
    instance.close()


def test_an_incoming_call_whose_chain_holds_the_object_is_refused_without_running(tmp_path):
    instance = _instance(tmp_path, "s3")
    looping = _call(instance, "fan_out", chain=["Relay/x", "Sender/s3", "Relay/y"], count=1)
    batch = instance.run_batch([looping])
    (outcome,) = batch.outcomes
    assert outcome.error["code"] == "call_cycle"
    assert "Sender/s3 -> Relay/y -> Sender/s3" in outcome.error["message"]
    assert batch.sends == []
    instance.close()


def test_targets_are_checked_locally_and_waiting_needs_a_host(tmp_path):
    instance = _instance(tmp_path, "s4")
    codes = [
        instance.run_batch([_call(instance, "bad_target", kind=k)]).outcomes[0].error["code"]
        for k in ("class", "name", "method", "args")
    ]
    assert codes == [UnknownClass.code, InvalidName.code, UnknownMethod.code, InvalidArguments.code]
    outcome = instance.run_batch([_call(instance, "wait_on", target="x")]).outcomes[0]
    assert outcome.error["code"] == "unavailable" and "running host" in outcome.error["message"]
    assert instance.pending_outbox() == []
    instance.close()


class _Transport:
    reply_to = "replies:test"

    def __init__(self, error: Exception | None = None) -> None:
        self.error, self.calls = error, []

    def call(self, call: Call, timeout_s: float) -> Outcome:
        self.calls.append(call)
        if self.error is not None:
            raise self.error
        return Outcome.success(call.call_id, 7)


def test_a_waiting_call_carries_the_chain_and_a_derived_id(tmp_path):
    transport = _Transport()
    instance = _instance(tmp_path, "s6", transport=transport)
    caller = _call(instance, "wait_and_swallow", chain=["Relay/x"], target="t")
    assert instance.run_batch([caller]).outcomes[0].result == "7"
    (sent,) = transport.calls
    assert sent.chain == ["Relay/x", "Sender/s6"]
    assert sent.call_id == derived_call_id(caller.call_id, 0)
    assert sent.reply_to == "replies:test"
    instance.close()


def test_an_undeliverable_call_fails_the_batch_uncommitted_even_if_user_code_catches_it(tmp_path):
    transport = _Transport(RemoteCallUnavailable("Tally/t.total: could not enqueue"))
    instance = _instance(tmp_path, "s7", transport=transport)
    caller = _call(instance, "wait_and_swallow", target="t")
    with pytest.raises(RemoteCallUnavailable):
        instance.run_batch([caller])
    assert caller.call_id not in recorded_outcomes(instance.path)  # it runs again later, under the same ids
    transport.error = None
    assert instance.run_batch([caller]).outcomes[0].result == "7"
    assert [c.call_id for c in transport.calls] == [derived_call_id(caller.call_id, 0)] * 2
    instance.close()


def test_self_objects_outside_a_call_is_refused(tmp_path):
    instance = _instance(tmp_path, "s5")
    with pytest.raises(SoloError, match="only while a call"):
        instance._user.objects.get("Tally", "x").send.add(tag="late")
    instance.close()


def test_errors_are_exported_with_their_codes():
    assert CycleError.code == "call_cycle" and issubclass(CycleError, RemoteCallError)
    assert Relay.__solo_methods__ and Tally.__solo_methods__
