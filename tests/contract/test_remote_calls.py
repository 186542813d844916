"""Calls between objects through the host, the API and the mailbox, on both backends.

Waiting calls, errors, cycles, sends after commit, re-runs that send once. The instance alone
(outbox, derived ids, chains; no services) is in tests/unit/test_remote_calls.py.
"""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from solo.objects.coordination.keys import Keys
from solo.objects.naming import idempotent_call_id, object_id
from solo.objects.remote import derived_call_id
from solo.objects.state.installation import installation_secret
from solo.testing.inprocess import InProcessSystem


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
        path = result(http, names[0], "hop", route=names[1:])
    # Then each waiting drain lent its thread to the next object: no wait ran into its timeout
    # (one that had would have failed the chain with remote_call_timeout, not answered 200)
    assert path == names


def test_an_error_in_the_target_surfaces_in_the_caller_as_remote_call_error(system):
    a, t = f"Relay/{fresh('a')}", f"Tally/{fresh('t')}"
    with system.running() as http:
        # The caller can catch it
        caught = result(http, a, "ask_safely", target=t, method="crash")
        assert caught["error"]["code"] == "method_error" and caught["error"]["type"] == "RemoteCallError"
        # The target's exception: its type, not its message (which is in the worker's log)
        told = caught["error"]["message"]
        assert told.startswith(f"{t}.crash failed: Tally.crash raised ValueError") and "tally crashed" not in told
        # Uncaught, the HTTP caller of the caller sees the target's error, named
        response = post(http, a, "ask", target=t, method="crash")
        assert response.status_code == 500
        assert response.json()["error"]["code"] == "method_error"
        told = response.json()["error"]["message"]  # with the target call's id, for its worker's log
        assert told.startswith(f"{t}.crash failed: Tally.crash raised ValueError") and "tally crashed" not in told
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
        caught = result(http, a, "ask_safely", target=f, method="slow", args={"ms": 1500}, timeout_s=0.2)
        assert caught["error"]["code"] == "remote_call_timeout"
        assert caught["error"]["type"] == "RemoteCallTimeout"
        # The call itself still ran
        assert result(http, f, "slow", ms=0) == 0


# -- cycles ------------------------------------------------------------------------------


def test_a_cycle_between_two_objects_fails_fast_with_the_cycle_named(system):
    a, b = f"Relay/{fresh('a')}", f"Relay/{fresh('b')}"
    with system.running() as http:
        # When A calls B, which calls A back while A waits
        response = post(http, a, "hop", route=[b, a])

        # Then the call fails as a cycle, named (not as remote_call_timeout: nothing waited it out)
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
    caller_call = idempotent_call_id(
        installation_secret(system.engine), object_id(system.settings.namespace, "Relay", relay), "tell-once"
    )
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
        assert result(http, a, "tell", target=t, tags=["x", "y"]) == 2
        # Then the call was answered by the next activation (after the backoff), which sent both
        # committed entries again under the same ids: each ran exactly once, in order
        assert failures
        assert result(http, t, "tags") == ["x", "y"]
        assert result(http, a, "log") == [f"told {t} ['x', 'y']"]
