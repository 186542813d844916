"""The HTTP API contract, end to end through the in-process system, on both backends.

Guarantee 8: bad input gets a clear 4xx with a machine-readable code and
changes nothing. Every bad-input case below also checks that nothing was
written: no catalog entry (so GET metadata is 404) and no mailbox, call record
or live-index key in Redis, or, for an object that already exists, that its
state is unchanged.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa

from solo import DurableObject, rpc
from solo.objects.coordination.keys import Keys
from solo.objects.naming import object_id
from solo.objects.state.schema import objects_table
from solo.testing.inprocess import InProcessSystem

POLL_LIMIT_S = 20.0  # a bound on polling loops, not a timing assertion


class HttpApiProbe(DurableObject):
    """Takes and returns any JSON, to probe what argument decoding lets through."""

    @rpc
    def echo(self, data: Any = None) -> Any:
        self.storage.put("last", data)
        return data

    @rpc
    def last(self) -> Any:
        return self.storage.get("last")

    @rpc
    def deep(self, levels: int) -> list:
        """Writes, then returns a list nested `levels` deep."""
        self.storage.put("last", "deep")
        value: list = []
        for _ in range(levels):
            value = [value]
        return value


def nested(depth: int) -> bytes:
    """A JSON array `depth` levels deep."""
    return b"[" * depth + b"]" * depth


def unique() -> str:
    return uuid.uuid4().hex


def url(class_name: str, name: str, method: str | None = None) -> str:
    path = f"/v1/objects/{class_name}/{name}"
    return f"{path}/{method}" if method else path


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"], error
    return error


def wait_for_call(http, call_id: str) -> dict:
    deadline = time.monotonic() + POLL_LIMIT_S
    while True:
        response = http.get(f"/v1/calls/{call_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] in ("queued", "running", "done", "failed"), body
        if body["status"] in ("done", "failed"):
            return body
        assert time.monotonic() < deadline, f"call {call_id} did not finish: {body}"
        time.sleep(0.02)


@pytest.fixture
def make_system(settings, redis_client, async_redis_client):
    def make(**changes) -> InProcessSystem:
        return InProcessSystem(settings.with_changes(**changes), redis_client, async_redis_client)

    return make


@pytest.fixture
def system(make_system) -> InProcessSystem:
    return make_system()


@pytest.fixture
def http(system):
    with system.running() as client:
        yield client


class Written:
    """What the shared database and Redis hold, to prove a request wrote nothing."""

    def __init__(self, system: InProcessSystem, redis_client) -> None:
        self.system, self.redis = system, redis_client
        self.prefix = system.settings.key_prefix

    def catalog_rows(self, name: str) -> int:
        # The Postgres database is shared by the whole session: look for this name only.
        with self.system.engine.connect() as conn:
            query = sa.select(sa.func.count()).select_from(objects_table).where(objects_table.c.name == name)
            return conn.execute(query).scalar_one()

    def redis_keys(self) -> list[str]:
        found = self.redis.scan_iter(match=f"{self.prefix}:*", count=1000)
        keys = [k.decode() if isinstance(k, bytes) else k for k in found]
        # Reply and wake lists exist only while they hold items; neither is state. Nor is the
        # running worker's heartbeat record, nor its lease heartbeat.
        workers = Keys(self.prefix)
        return sorted(
            k
            for k in keys
            if ":replies:" not in k
            and ":wake:" not in k
            and not k.startswith(workers.worker(""))
            and not k.startswith(workers.alive(""))
            and k != workers.workers
        )

    def assert_nothing(self, http, class_name: str, name: str) -> None:
        assert self.catalog_rows(name) == 0
        assert self.redis_keys() == []
        if class_name != "NoSuchClass" and valid_name(name):
            assert_error(http.get(url(class_name, name)), 404, "object_not_found")


def valid_name(name: str) -> bool:
    return 0 < len(name) <= 256 and name == name.strip() and name.isprintable() and "/" not in name


@pytest.fixture
def written(system, redis_client) -> Written:
    return Written(system, redis_client)


# -- unknown class or method -------------------------------------------------


def test_unknown_class_and_method_are_404_and_write_nothing(http, written):
    name = unique()
    assert_error(http.post(url("NoSuchClass", name, "increment"), json={}), 404, "unknown_class")
    assert_error(http.get(url("NoSuchClass", name)), 404, "unknown_class")
    assert_error(http.post(url("Counter", name, "no_such_method"), json={}), 404, "unknown_method")
    # Underscore names and inherited attributes are not rpc methods.
    assert_error(http.post(url("Counter", name, "on_start")), 404, "unknown_method")
    assert_error(http.post(url("Counter", name, "__init__")), 404, "unknown_method")
    # The method is checked before the body is read: a bad body does not change the answer.
    assert_error(http.post(url("Counter", name, "nope"), content=b"{not json"), 404, "unknown_method")
    written.assert_nothing(http, "Counter", name)
    written.assert_nothing(http, "NoSuchClass", name)
    # A route that does not exist at all is still a JSON error.
    assert_error(http.get("/v1/nothing-here"), 404, "not_found")
    assert_error(http.get(url("Counter", name, "increment")), 405, "method_not_allowed")


# -- invalid arguments ---------------------------------------------------------

# (class, method, raw body, what is wrong)
BAD_ARGUMENTS = [
    ("Counter", "increment", b'{"by": ', "truncated JSON"),
    ("Counter", "increment", b"{by: 1}", "not JSON"),
    ("Counter", "increment", b'{"by": 1,}', "trailing comma"),
    ("Counter", "increment", b'{"by": "\xff"}', "invalid UTF-8"),
    ("Counter", "increment", b'{"by": 1, "extra": 2}', "unknown argument"),
    ("Counter", "increment", b'{"step": 1}', "unknown argument only"),
    ("Counter", "increment", b'{"by": "2"}', "string for int"),
    ("Counter", "increment", b'{"by": 2.5}', "float for int"),
    ("Counter", "increment", b'{"by": true}', "bool for int"),
    ("Counter", "increment", b'{"by": null}', "null for int"),
    ("Counter", "increment", b"[1]", "array body"),
    ("Counter", "increment", b'"by"', "string body"),
    ("Counter", "increment", b"1", "number body"),
    ("Counter", "increment", b"null", "null body"),
    ("Fragile", "add", b"{}", "missing argument"),
    ("Fragile", "add", b"", "missing argument, empty body"),
    ("Fragile", "add", b'{"text": ["a"]}', "list for str"),
    ("Fragile", "add_then_fail", b'{"text": "a", "kind": "other"}', "value outside a Literal"),
    ("Fragile", "slow", b'{"ms": "1"}', "string for int"),
    # JSON that Python's parser accepts but that is not JSON (RFC 8259): NaN and
    # infinities, including a number literal too large for a float.
    ("Ledger", "append", b'{"tag": "t", "sleep_ms": NaN}', "NaN"),
    ("Ledger", "append", b'{"tag": "t", "sleep_ms": Infinity}', "Infinity"),
    ("Ledger", "append", b'{"tag": "t", "sleep_ms": -Infinity}', "-Infinity"),
    ("Ledger", "append", b'{"tag": "t", "sleep_ms": 1e999}', "float overflow"),
    # An integer literal longer than Python's int conversion limit (4300 digits).
    ("Counter", "increment", b'{"by": ' + b"9" * 5000 + b"}", "5000-digit integer"),
    # Nesting deep enough to exhaust the parser's recursion: still bad input, not a 500.
    ("Ledger", "append", b'{"tag": "t", "sleep_ms": ' + nested(100_000) + b"}", "parser-deep nesting"),
    ("HttpApiProbe", "echo", b'{"data": ' + nested(100_000) + b"}", "parser-deep nesting"),
    # Nesting the parser accepts but the encoders downstream cannot (at most 64 levels).
    ("HttpApiProbe", "echo", b'{"data": ' + nested(500) + b"}", "500 levels"),
    ("HttpApiProbe", "echo", b'{"data": ' + nested(64) + b"}", "65 levels"),
    # Strings with unpaired surrogates cannot be stored or sent back as UTF-8.
    ("HttpApiProbe", "echo", b'{"data": "\\ud800"}', "lone high surrogate"),
    ("HttpApiProbe", "echo", b'{"data": ["ok", {"k": "x\\udfff"}]}', "nested lone low surrogate"),
    ("HttpApiProbe", "echo", b'{"data": {"\\udc00": 1}}', "surrogate in a key"),
    ("HttpApiProbe", "echo", b'{"data": "\xed\xa0\x80"}', "raw surrogate bytes"),
    ("Fragile", "add", b'{"text": "\\ud83d"}', "half a surrogate pair"),
]

# One object of each class, for the checks that bad input leaves existing state alone.
SETUP = {
    "Counter": ("increment", {"by": 5}, "get", 5),
    "Fragile": ("add", {"text": "kept"}, "count", 1),
    "HttpApiProbe": ("echo", {"data": {"kept": [1, "two"]}}, "last", {"kept": [1, "two"]}),
}


def test_invalid_arguments_are_422_and_write_nothing(http, written):
    names = []
    for class_name, method, body, what in BAD_ARGUMENTS:
        name = unique()
        names.append((class_name, name))
        response = http.post(url(class_name, name, method), content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 422, f"{what}: {response.status_code} {response.text[:300]}"
        assert_error(response, 422, "invalid_arguments")
    for class_name, name in names:
        written.assert_nothing(http, class_name, name)


def test_invalid_arguments_leave_an_existing_object_unchanged(http):
    names = {class_name: unique() for class_name in SETUP}
    for class_name, (method, arguments, _, expected) in SETUP.items():
        response = http.post(url(class_name, names[class_name], method), json=arguments)
        assert response.json()["result"] == expected
    for class_name, method, body, what in BAD_ARGUMENTS:
        if class_name not in names:
            continue
        response = http.post(url(class_name, names[class_name], method), content=body)
        assert response.status_code == 422, f"{what}: {response.status_code} {response.text[:300]}"
    for class_name, (_, _, read, expected) in SETUP.items():
        assert http.post(url(class_name, names[class_name], read)).json()["result"] == expected


def test_well_formed_arguments_are_accepted(http):
    name = unique()
    # No body, an empty one and an empty object all mean "no arguments" (whitespace is not JSON: a 422,
    # test_gateway_errors.py); ints are valid floats.
    assert http.post(url("Counter", name, "increment")).json()["result"] == 1
    assert http.post(url("Counter", name, "increment"), content=b"").json()["result"] == 2
    assert http.post(url("Counter", name, "increment"), json={}).json()["result"] == 3
    ledger = unique()
    response = http.post(url("Ledger", ledger, "append"), json={"tag": "t", "sleep_ms": 0})
    assert response.status_code == 200, response.text
    response = http.post(url("Ledger", ledger, "append"), json={"tag": "u", "sleep_ms": 0.5})
    assert response.status_code == 200, response.text
    assert [e["tag"] for e in http.post(url("Ledger", ledger, "entries")).json()["result"]] == ["t", "u"]
    # Structured values round-trip exactly: 64 levels of nesting, any Unicode, NUL.
    probe = unique()
    for data in (
        [[[]]],
        {"a": {"b": [1, 2.5, None, True, "x"]}},
        "😀 é ü \u0000 \u2028 \U0010ffff",
        {"😀": "key"},
        10**30,
        -(2**63),
        1e308,
    ):
        response = http.post(url("HttpApiProbe", probe, "echo"), json={"data": data})
        assert response.status_code == 200, response.text
        assert response.json()["result"] == data
    deepest = b'{"data": ' + nested(63) + b"}"
    response = http.post(url("HttpApiProbe", probe, "echo"), content=deepest)
    assert response.status_code == 200, response.text
    assert response.content.count(b"[") == 63


# -- payload too large ------------------------------------------------------


def test_oversize_body_is_413_and_writes_nothing(make_system, redis_client):
    system = make_system(max_body_bytes=64)
    written = Written(system, redis_client)
    fresh, existing = unique(), unique()
    big = {"text": "x" * 200}
    with system.running() as http:
        # With a Content-Length header.
        assert_error(http.post(url("Fragile", fresh, "add"), json=big), 413, "payload_too_large")
        # Streamed without a Content-Length (chunked): the limit holds while reading.
        chunks = (b'{"text": "' + b"x" * 20, *[b"x" * 20] * 10, b'"}')
        response = http.post(url("Fragile", fresh, "add"), content=iter(chunks))
        assert_error(response, 413, "payload_too_large")
        written.assert_nothing(http, "Fragile", fresh)

        assert http.post(url("Fragile", existing, "add"), json={"text": "small"}).json()["result"] == 1
        assert_error(http.post(url("Fragile", existing, "add"), json=big), 413, "payload_too_large")
        assert http.post(url("Fragile", existing, "count")).json()["result"] == 1
        # Exactly at the limit is accepted.
        body = b'{"text": "' + b"y" * (64 - 12) + b'"}'
        assert len(body) == 64
        response = http.post(url("Fragile", existing, "add"), content=body)
        assert response.status_code == 200, response.text
        assert response.json()["result"] == 2


def test_the_default_body_limit_is_one_mebibyte(http, written):
    name = unique()
    text = "x" * (1024 * 1024)
    assert_error(http.post(url("Fragile", name, "add"), json={"text": text}), 413, "payload_too_large")
    written.assert_nothing(http, "Fragile", name)


# -- invalid names ------------------------------------------------------------


def test_invalid_names_are_400_and_write_nothing(http, written):
    uid = unique()
    bad_names = [
        ("%01" + uid, "\x01" + uid),  # control character
        (uid + "%7F", uid + "\x7f"),  # DEL
        ("%20" + uid, " " + uid),  # leading space
        (uid + "%20", uid + " "),  # trailing space
        ("%09" + uid, "\t" + uid),  # leading tab
        (uid + "x" * 268, uid + "x" * 268),  # 300 characters
        ("%2F" + uid, "/" + uid),  # an encoded slash
    ]
    for raw, decoded in bad_names:
        response = http.post(f"/v1/objects/Counter/{raw}/increment", json={"by": 1})
        if response.status_code == 404:  # a router may refuse an encoded slash before solo sees it
            assert raw.startswith("%2F"), response.text
            continue
        assert_error(response, 400, "invalid_name")
        assert_error(http.get(f"/v1/objects/Counter/{raw}"), 400, "invalid_name")
        assert written.catalog_rows(decoded) == 0, decoded
    for class_name in ("Not-A-Class", "1Counter", "Counter%20", "C" * 129, "Counter%01"):
        response = http.post(f"/v1/objects/{class_name}/{uid}/increment", json={})
        assert_error(response, 400, "invalid_name")
        assert_error(http.get(f"/v1/objects/{class_name}/{uid}"), 400, "invalid_name")
    assert written.catalog_rows(uid) == 0
    assert written.redis_keys() == []
    # 256 characters is the longest name allowed.
    longest = uid + "z" * (256 - len(uid))
    assert http.post(url("Counter", longest, "increment")).json()["result"] == 1


def test_invalid_idempotency_key_is_400_and_writes_nothing(http, written):
    name = unique()
    for key in ("k" * 256, ""):
        response = http.post(url("Counter", name, "increment"), json={"by": 1}, headers={"Idempotency-Key": key})
        assert_error(response, 400, "invalid_idempotency_key")
    written.assert_nothing(http, "Counter", name)
    # 255 characters is accepted.
    response = http.post(url("Counter", name, "increment"), json={"by": 1}, headers={"Idempotency-Key": "k" * 255})
    assert response.status_code == 200, response.text
    assert response.json()["result"] == 1


# -- timeouts -------------------------------------------------------------------


def test_timeout_is_504_with_call_id_and_the_call_completes(make_system):
    system = make_system(call_timeout_s=0.3)
    name = unique()
    with system.running() as http:
        response = http.post(url("Fragile", name, "slow"), json={"ms": 1500})
        error = assert_error(response, 504, "timeout")
        call_id = error["call_id"]
        assert isinstance(call_id, str) and call_id
        assert call_id in error["message"]
        status = wait_for_call(http, call_id)
        assert status["status"] == "done", status
        assert status["result"] == 1500
        # The object keeps serving after the timed-out call.
        assert http.post(url("Fragile", name, "count")).json()["result"] == 0


# -- method errors -----------------------------------------------------------


def test_method_errors_roll_back_and_the_object_keeps_serving(http):
    name = unique()
    path = url("Fragile", name, "{}")
    assert http.post(path.format("add"), json={"text": "kept"}).json()["result"] == 1

    response = http.post(path.format("add_then_fail"), json={"text": "lost", "kind": "crash"})
    error = assert_error(response, 500, "method_error")
    assert error["type"] == "ValueError"
    assert error["call_id"]
    # The exception's message is in the worker's log, not in the answer (SOLO_DEBUG is off)
    assert error["message"] == (
        f"Fragile.add_then_fail raised ValueError; its message is in the worker's log (call {error['call_id']})"
    )
    assert http.post(path.format("count")).json()["result"] == 1

    response = http.post(path.format("add_then_fail"), json={"text": "lost", "kind": "user"})
    error = assert_error(response, 409, "user_error")
    assert error["message"] == "conflict: try later"
    assert "status" not in error
    assert http.post(path.format("count")).json()["result"] == 1

    response = http.post(path.format("unsendable"))
    error = assert_error(response, 500, "method_error")
    assert error["type"] == "TypeError"
    assert "JSON" in error["message"]

    assert http.post(path.format("add"), json={"text": "again"}).json()["result"] == 2

    # A result too deeply nested to encode is a failed call too, and does not wedge the object.
    probe = unique()
    assert http.post(url("HttpApiProbe", probe, "echo"), json={"data": "kept"}).status_code == 200
    error = assert_error(http.post(url("HttpApiProbe", probe, "deep"), json={"levels": 5000}), 500, "method_error")
    assert error["type"] == "RecursionError"
    assert http.post(url("HttpApiProbe", probe, "last")).json()["result"] == "kept"
    assert http.post(url("HttpApiProbe", probe, "deep"), json={"levels": 3}).json()["result"] == [[[[]]]]

    # A failed call's record says so, with the error but no HTTP status inside it.
    call_id = http.post(path.format("add_then_fail"), json={"text": "x"}, headers={"Prefer": "respond-async"}).json()[
        "call_id"
    ]
    status = wait_for_call(http, call_id)
    assert status["status"] == "failed", status
    assert status["error"]["code"] == "method_error"
    assert status["error"]["type"] == "ValueError"
    assert http.post(path.format("count")).json()["result"] == 2


# -- idempotency ---------------------------------------------------------------


def test_an_idempotency_key_reused_for_another_request_is_422_and_runs_nothing(http):
    name = unique()
    key = {"Idempotency-Key": f"once-{unique()}"}
    assert http.post(url("Counter", name, "increment"), json={"by": 2}, headers=key).json()["result"] == 2

    other_arguments = http.post(url("Counter", name, "increment"), json={"by": 5}, headers=key)
    other_method = http.post(url("Counter", name, "get"), headers=key)

    assert_error(other_arguments, 422, "idempotency_key_reused")
    assert_error(other_method, 422, "idempotency_key_reused")
    assert http.post(url("Counter", name, "get")).json()["result"] == 2  # neither ran


def test_same_idempotency_key_runs_once(http):
    name = unique()
    key = {"Idempotency-Key": f"retry-{unique()}"}
    first = http.post(url("Counter", name, "increment"), json={"by": 2}, headers=key)
    second = http.post(url("Counter", name, "increment"), json={"by": 2}, headers=key)
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert first.json() == second.json()
    assert first.json()["result"] == 2
    # A plain call shows the keyed one ran once.
    assert http.post(url("Counter", name, "increment"), json={"by": 1}).json()["result"] == 3
    # The same key on another object is another call.
    other = http.post(url("Counter", unique(), "increment"), json={"by": 2}, headers=key)
    assert other.json()["result"] == 2
    assert other.json()["call_id"] != first.json()["call_id"]
    # Asking for an async answer to a finished keyed call gives the recorded result.
    again = http.post(url("Counter", name, "increment"), json={"by": 2}, headers={**key, "Prefer": "respond-async"})
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert http.post(url("Counter", name, "get")).json()["result"] == 3


# -- asynchronous calls -----------------------------------------------------------


def test_respond_async_returns_202_then_the_outcome(http):
    name = unique()
    response = http.post(url("Counter", name, "increment"), json={"by": 7}, headers={"Prefer": "respond-async"})
    assert response.status_code == 202, response.text
    body = response.json()
    call_id = body["call_id"]
    assert body["status_url"] == f"/v1/calls/{call_id}"
    assert response.headers["location"] == body["status_url"]
    status = wait_for_call(http, call_id)
    assert status == {"call_id": call_id, "status": "done", "result": 7}
    assert http.post(url("Counter", name, "get")).json()["result"] == 7


def test_unknown_call_id_is_404(http):
    assert_error(http.get(f"/v1/calls/{unique()}"), 404, "call_not_found")
    assert_error(http.get(f"/v1/calls/{'x' * 300}"), 404, "call_not_found")


# -- metadata ------------------------------------------------------------------


def test_object_metadata(http, system):
    name = unique()
    assert_error(http.get(url("Counter", name)), 404, "object_not_found")
    assert http.post(url("Counter", name, "increment")).status_code == 200
    response = http.get(url("Counter", name))
    assert response.status_code == 200, response.text
    info = response.json()
    assert info["id"] == object_id(system.settings.namespace, "Counter", name)
    assert info["class"] == "Counter"
    assert info["name"] == name
    assert info["active"] is True
    assert info["owner"] == system.host.worker_id
    assert isinstance(info["state_bytes"], int) and info["state_bytes"] >= 0
    assert info["epoch"] >= 1
    assert info["last_active_at"] and info["created_at"]
    # Another object of the same name in another class is a different object.
    assert_error(http.get(url("Fragile", name)), 404, "object_not_found")


# -- health and the OpenAPI document -----------------------------------------------


def test_health_readiness_and_openapi(http):
    assert http.get("/healthz").status_code == 200
    ready = http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ok", "checks": {"redis": "ok", "database": "ok"}}
    response = http.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    operation = paths["/v1/objects/Counter/{name}/increment"]["post"]
    assert operation["operationId"] == "Counter.increment"
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"] == {"by": {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}}
    assert schema["required"] == []
    assert "/v1/objects/Fragile/{name}/add_then_fail" in paths


# -- serial execution under concurrency ---------------------------------------------


def test_concurrent_increments_run_one_at_a_time(http):
    name = unique()
    path = url("Counter", name, "increment")

    def increment(_):
        response = http.post(path, json={"by": 1})
        assert response.status_code == 200, response.text
        return response.json()["result"]

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(increment, range(50)))
    assert sorted(results) == list(range(1, 51))
    assert http.post(url("Counter", name, "get")).json()["result"] == 50


# -- bounds ------------------------------------------------------------------------


@pytest.fixture
def bounded_http(settings, redis_client, async_redis_client):
    bounded = settings.with_changes(max_queued_calls=3)
    with InProcessSystem(bounded, redis_client, async_redis_client).running() as client:
        yield client


def test_a_call_past_the_mailbox_bound_is_429_and_nothing_is_queued(bounded_http):
    # Given: an object busy with a slow call, and two calls queued behind it (three in its mailbox)
    name = unique()
    path = f"/v1/objects/Ledger/{name}/append"
    submitted = [
        bounded_http.post(path, json={"tag": tag, "sleep_ms": sleep}, headers={"Prefer": "respond-async"})
        for tag, sleep in (("slow", 3000), ("a", 0), ("b", 0))
    ]
    assert [r.status_code for r in submitted] == [202, 202, 202], [r.text for r in submitted]

    # When: a fourth comes while they are queued
    refused = bounded_http.post(path, json={"tag": "refused"}, headers={"Prefer": "respond-async"})

    # Then: 429 mailbox_full, and it never runs; the others do, and the mailbox takes calls again
    assert_error(refused, 429, "mailbox_full")
    for response in submitted:
        assert wait_for_call(bounded_http, response.json()["call_id"])["status"] == "done"
    entries = bounded_http.post(f"/v1/objects/Ledger/{name}/entries").json()["result"]
    assert [e["tag"] for e in entries] == ["slow", "a", "b"]
