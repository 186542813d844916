"""What callers are told when something goes wrong, over HTTP, on both backends.

Guarantee 8: bad input gets a 4xx with a machine-readable code, never a 5xx. Each
case here was once a 500 (most were found by fuzzing the OpenAPI document,
tests/e2e/test_fuzz.py). And errors tell nothing they should not: an exception's
text (which may name hosts, SQL or data) goes to the log, not to the caller,
unless SOLO_DEBUG is on.

The client here raises any exception that escapes the application: none may, as
the server would then also close the caller's keep-alive connection.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from starlette.testclient import TestClient

from solo import DurableObject, rpc
from solo.testing.inprocess import InProcessSystem

OCTET = {"Content-Type": "application/octet-stream"}


class GatewayProbe(DurableObject):
    """Binds what it is sent to SQL, whatever its type."""

    migrations = ["CREATE TABLE kept (value)"]

    @rpc
    def keep(self, value: Any = None) -> int:
        self.sql.execute("INSERT INTO kept VALUES (?)", (value,))
        return self.sql.execute("SELECT count(*) FROM kept").fetchone()[0]

    @rpc
    def total(self, values: list[int]) -> int:
        return sum(values)

    @rpc
    def scale(self, factor: float) -> float:
        return factor * 2

    @rpc
    def share(self, text: str, number: int) -> int:
        return self.shared.execute("INSERT INTO test_gateway_values (text, number) VALUES (:t, :n)", t=text, n=number)


def unique() -> str:
    return uuid.uuid4().hex


def url(class_name: str, name: str, action: str | None = None) -> str:
    path = f"/v1/objects/{class_name}/{name}"
    return f"{path}/{action}" if action else path


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"], error
    return error


def result(http, class_name: str, object_name: str, method: str, **arguments) -> Any:
    response = http.post(url(class_name, object_name, method), json=arguments)
    assert response.status_code == 200, response.text
    return response.json()["result"]


@contextlib.contextmanager
def strict(system: InProcessSystem):
    """Like InProcessSystem.running(), with a client that raises what escapes the application."""
    system.host.start()
    try:
        with TestClient(system.app, raise_server_exceptions=True) as client:
            yield client
    finally:
        system.host.stop()
        system.engine.dispose()


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
    with strict(system) as client:
        yield client


# -- bad input: 4xx, never 5xx -----------------------------------------------------------


def test_a_restore_time_that_an_offset_moves_past_year_1_or_9999_is_422(http):
    name = unique()
    assert result(http, "Counter", name, "increment", by=5) == 5
    head = http.get(url("Counter", name)).json()["seq"]
    for at in ("0001-01-01T00:00:00+14:00", "0001-01-01T05:00:00+05:01", "9999-12-31T23:59:59-00:01"):
        response = http.post(url("Counter", name, "restore"), json={"at": at})
        assert "out of range" in assert_error(response, 422, "invalid_arguments")["message"], at
    # At the very ends of the range the time is fine: before every commit, and after the last one.
    response = http.post(url("Counter", name, "restore"), json={"at": "0001-01-01T00:00:00"})
    assert_error(response, 422, "out_of_retention")
    assert http.get(url("Counter", name)).json()["seq"] == head
    response = http.post(url("Counter", name, "restore"), json={"at": "9999-12-31T23:59:59.999999+00:00"})
    assert response.status_code == 200, response.text
    assert response.json()["restored_from"] == head
    assert result(http, "Counter", name, "get") == 5


def test_alarm_listing_numbers_are_ascii_digits_within_range(http):
    bad = {
        "limit": ["²", "١٠", "0", "10001", "9" * 5000, "-1", "1.0", " 5"],
        "due_before": ["²", "1" * 23, "9223372036854775808", "9" * 5000, "-5", "tomorrow"],
    }
    for parameter, values in bad.items():
        for value in values:
            response = http.get("/v1/alarms", params={parameter: value})
            assert response.status_code == 422, f"{parameter}={value[:30]!r}: {response.text[:200]}"
            assert_error(response, 422, "invalid_arguments")
    for parameter, value in (("limit", "0010"), ("due_before", "9223372036854775807"), ("due_before", "0" * 30)):
        response = http.get("/v1/alarms", params={parameter: value})
        assert response.status_code == 200, f"{parameter}={value}: {response.text}"
        assert response.json() == {"alarms": []}


def test_an_int_argument_past_64_bits_is_422_and_writes_nothing(http):
    name = unique()
    for by in (2**63, -(2**63) - 1, 10**30):
        response = http.post(url("Counter", name, "increment"), json={"by": by})
        error = assert_error(response, 422, "invalid_arguments")
        assert "from -9223372036854775808 to 9223372036854775807" in error["message"]
    assert_error(http.get(url("Counter", name)), 404, "object_not_found")
    # Inside a list[int] too; a float takes any integer a float can hold.
    assert_error(http.post(url("GatewayProbe", name, "total"), json={"values": [1, 2**63]}), 422, "invalid_arguments")
    assert_error(http.post(url("GatewayProbe", name, "scale"), json={"factor": 10**309}), 422, "invalid_arguments")
    assert result(http, "GatewayProbe", name, "scale", factor=2**63) == 2.0**64
    # The ends of the range are accepted and carried exactly.
    assert result(http, "Counter", name, "increment", by=2**63 - 1) == 2**63 - 1
    assert result(http, "GatewayProbe", name, "total", values=[-(2**63), 2**63 - 1]) == -1


def test_an_unannotated_int_past_64_bits_that_reaches_sql_is_sql_too_big(http):
    # JSON carries it to the method; SQLite cannot bind it: the content is at fault, not the method.
    name = unique()
    assert result(http, "GatewayProbe", name, "keep", value=1) == 1
    response = http.post(url("GatewayProbe", name, "keep"), json={"value": 2**64})
    error = assert_error(response, 422, "sql_too_big")
    assert error["type"] == "SqlTooBig" and error["call_id"]
    assert result(http, "GatewayProbe", name, "keep", value=-(2**63)) == 2


def test_a_schedule_the_caller_made_invalid_is_422(http):
    name = unique()
    response = http.post(url("Alarmed", name, "every"), json={"name": "_reserved", "seconds": 5})
    error = assert_error(response, 422, "invalid_schedule")
    assert error["type"] == "InvalidSchedule" and "_reserved" in error["message"]
    response = http.post(url("Alarmed", name, "cron"), json={"name": "c", "expression": "not cron"})
    assert_error(response, 422, "invalid_schedule")
    assert result(http, "Alarmed", name, "listing") == []


def test_a_value_the_shared_database_cannot_hold_is_422(http, engine, backend):
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS test_gateway_values (text TEXT, number INTEGER)"))
    name = unique()
    assert result(http, "GatewayProbe", name, "share", text="plain", number=1) == 1
    for text, number in (("nul \x00 inside", 1), ("plain", 2**40)):
        response = http.post(url("GatewayProbe", name, "share"), json={"text": text, "number": number})
        if backend == "fake":  # SQLite holds both: a NUL in text, and any 64-bit integer in INTEGER
            assert response.status_code == 200, response.text
            continue
        # PostgreSQL's text cannot hold NUL, and its INTEGER is 32 bits: the caller's values, refused
        error = assert_error(response, 422, "shared_value_refused")
        assert error["type"] == "SharedValueRefused" and "INSERT" not in error["message"]
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT count(*) FROM test_gateway_values WHERE text = 'plain'")).scalar_one()
    assert rows >= 1


def test_imports_with_text_for_numbers_or_bad_alarm_json_are_422(http, tmp_path):
    # Both were 500s before imported files were checked row by row (objects/state/images.py).
    source, target = unique(), unique()
    result(http, "Alarmed", source, "every", name="tick", seconds=60)
    image = http.get(url("Alarmed", source, "export")).content
    edits = {
        "schema_version as text": "UPDATE _solo_meta SET value = 'one' WHERE key = 'schema_version'",
        "alarm kwargs not JSON": "UPDATE _solo_alarms SET kwargs = '{\"name\": '",
        "alarm kwargs not an object": "UPDATE _solo_alarms SET kwargs = '[1]'",
        "alarm time as text": "UPDATE _solo_alarms SET next_ms = 'soon'",
    }
    for what, edit in edits.items():
        file = tmp_path / f"{unique()}.sqlite"
        file.write_bytes(image)
        conn = sqlite3.connect(file)
        conn.execute(edit)
        conn.commit()
        conn.close()
        response = http.put(url("Alarmed", target, "import"), content=file.read_bytes(), headers=OCTET)
        assert response.status_code == 422, f"{what}: {response.text}"
        assert_error(response, 422, "invalid_image")
    assert_error(http.get(url("Alarmed", target)), 404, "object_not_found")


def test_an_idempotency_key_sent_again_with_another_request_is_422(http):
    # Once answered with the first request's outcome: another method's result, off the document.
    name, key = unique(), {"Idempotency-Key": f"k-{unique()}"}
    first = http.post(url("Counter", name, "increment"), json={"by": 2}, headers=key)
    assert first.status_code == 200, first.text
    again = http.post(url("Counter", name, "increment"), json={"by": 2}, headers=key)
    assert again.json() == first.json()
    for method, arguments in (("get", {}), ("increment", {"by": 3}), ("increment", {})):
        for prefer in ({}, {"Prefer": "respond-async"}):
            response = http.post(url("Counter", name, method), json=arguments, headers={**key, **prefer})
            assert_error(response, 422, "idempotency_key_reused")
    assert result(http, "Counter", name, "get") == 2
    # Arguments are the same request in any order of their keys.
    ledger, key = unique(), {"Idempotency-Key": f"k-{unique()}"}
    for body in (b'{"tag": "t", "sleep_ms": 0}', b'{"sleep_ms": 0, "tag": "t"}'):
        response = http.post(url("Ledger", ledger, "append"), content=body, headers=key)
        assert response.status_code == 200, response.text
        assert response.json()["result"] == 1


def test_405_names_every_method_the_path_serves_in_allow(http):
    name = unique()
    cases = [
        ("GET", url("Counter", name, "increment"), "POST"),
        ("PUT", url("Counter", name), "DELETE, GET, HEAD"),
        ("PATCH", "/v1/alarms", "DELETE, GET, HEAD"),
        ("PUT", "/v1/objects", "GET, HEAD"),
        ("GET", url("Counter", name, "evict"), "POST"),
        ("POST", "/healthz", "GET, HEAD"),
        ("DELETE", f"/v1/calls/{unique()}", "GET, HEAD"),
        ("GET", url("Counter", name, "restore"), "POST"),
        ("GET", url("Counter", name, "import"), "POST, PUT"),  # POST .../import calls an @rpc method "import"
    ]
    for method, path, allow in cases:
        response = http.request(method, path)
        assert_error(response, 405, "method_not_allowed")
        assert response.headers["allow"] == allow, (method, path)


# -- what errors tell --------------------------------------------------------------------


def test_an_internal_error_is_500_with_an_id_and_no_exception_text(system, monkeypatch, caplog):
    def broken(object_id):
        raise RuntimeError("password=hunter2 at db.internal:5432")

    monkeypatch.setattr(system.app.state.api.catalog, "get", broken)
    with strict(system) as http, caplog.at_level("ERROR", logger="solo.api.errors"):
        error = assert_error(http.get(url("Counter", unique())), 500, "internal_error")
        assert "hunter2" not in error["message"] and "RuntimeError" not in error["message"]
        # The same client goes on: nothing escaped the application (so a server keeps the connection).
        assert http.get("/healthz").status_code == 200
    (record,) = [r for r in caplog.records if "internal error" in r.getMessage()]
    assert record.getMessage().split()[2] in error["message"]  # the id quoted in the answer
    assert "hunter2" in str(record.exc_info[1])


def test_under_solo_debug_an_internal_error_says_what_it_was(make_system, monkeypatch):
    system = make_system(debug=True)
    monkeypatch.setattr(system.app.state.api.catalog, "get", lambda object_id: 1 / 0)
    with strict(system) as http:
        error = assert_error(http.get(url("Counter", unique())), 500, "internal_error")
        assert "ZeroDivisionError: division by zero" in error["message"]


def test_redis_errors_are_503_without_the_address(system, monkeypatch):
    async def unreachable(call_id):
        raise redis.ConnectionError("Error 111 connecting to redis.internal:6379. Connection refused.")

    monkeypatch.setattr(system.app.state.api.mailbox, "record", unreachable)
    with strict(system) as http:
        error = assert_error(http.get(f"/v1/calls/{unique()}"), 503, "unavailable")
        assert error["message"] == "Redis is unavailable"


def test_readyz_says_only_ok_or_unavailable_per_check(system, monkeypatch):
    with strict(system) as http:
        assert http.get("/readyz").json() == {"status": "ok", "checks": {"redis": "ok", "database": "ok"}}

        def down():
            raise OSError("connection to server at db.internal (10.0.0.7), port 5432 failed")

        monkeypatch.setattr(system.app.state.api.catalog, "ping", down)
        response = http.get("/readyz")
        assert response.status_code == 503
        assert response.json() == {"status": "unavailable", "checks": {"redis": "ok", "database": "unavailable"}}


def test_a_methods_exception_is_told_by_type_and_call_id_unless_solo_debug(make_system):
    name = unique()
    with strict(make_system()) as http:
        response = http.post(url("Fragile", name, "add_then_fail"), json={"text": "x"})
        error = assert_error(response, 500, "method_error")
        assert error["type"] == "ValueError" and error["call_id"] in error["message"]
        assert "boom" not in error["message"]
        # A UserError's message is always the caller's.
        response = http.post(url("Fragile", name, "add_then_fail"), json={"text": "x", "kind": "user"})
        assert assert_error(response, 409, "user_error")["message"] == "conflict: try later"
    with strict(make_system(debug=True)) as http:
        response = http.post(url("Fragile", name, "add_then_fail"), json={"text": "x"})
        assert assert_error(response, 500, "method_error")["message"] == "boom"


# -- the examples: what their methods refuse is the caller's fault, a 4xx ------------------------


def test_camera_ingest_of_base64_that_is_not_ascii_is_400_invalid_image(http):
    arguments = {"image_id": "x", "taken_at": 1, "bytes_b64": "\U000a6af4x"}  # found by fuzzing: once a 500
    response = http.post(url("CameraPoller", unique(), "ingest"), json=arguments)
    assert "not valid base64" in assert_error(response, 400, "invalid_image")["message"]


def test_a_counter_increment_past_the_64_bit_range_is_422_and_changes_nothing(http):
    # Found by fuzzing: SQLite made the sum a float, answered where the document promises an integer.
    counter = unique()
    assert result(http, "Counter", counter, "increment", by=-1) == -1
    response = http.post(url("Counter", counter, "increment"), json={"by": -(2**63)})
    assert "64-bit" in assert_error(response, 422, "out_of_range")["message"]
    assert result(http, "Counter", counter, "get") == -1
    assert result(http, "Counter", counter, "increment", by=2**63 - 1) == 2**63 - 2


def test_a_token_bucket_refilled_too_slowly_to_answer_its_wait_is_400_invalid_limit(http):
    # Once a 500: a refill of 5e-324 tokens a second made the wait until the bucket is full an infinite float.
    limiter = unique()
    response = http.post(url("RateLimiter", limiter, "take"), json={"key": "k", "capacity": 2, "refill_per_s": 5e-324})
    assert "refill_per_s" in assert_error(response, 400, "invalid_limit")["message"]
    taken = result(http, "RateLimiter", limiter, "take", key="k", capacity=1e9, refill_per_s=1e-6, tokens=1e9)
    assert taken == {"allowed": True, "tokens": 0, "reset_after": 1e15}  # the longest wait: 1e15 s


def test_a_metric_value_past_1e18_is_400_invalid_value_so_no_sum_becomes_infinite(http):
    # Once a 500: two values of 1.7e308 summed to an infinite float, which no answer could carry in JSON.
    analytics = unique()
    response = http.post(url("Analytics", analytics, "track"), json={"name": "a", "value": 1.7e308})
    assert "1e+18" in assert_error(response, 400, "invalid_value")["message"]
    for _ in range(2):
        result(http, "Analytics", analytics, "track", name="a", value=-1e18)
    result(http, "Analytics", analytics, "flush")
    assert result(http, "Analytics", analytics, "get_dashboard")["today"]["a"]["sum"] == -2e18


def test_a_body_of_only_whitespace_is_not_json_and_is_422(http):
    # Found by fuzzing: "\x0b" or "\r" was taken for no body, and the call ran without arguments.
    counter = unique()
    for body in (b"\x0b", b"\r", b" \n\t"):
        response = http.post(url("Counter", counter, "increment"), content=body)
        assert "not valid JSON" in assert_error(response, 422, "invalid_arguments")["message"], body
    assert http.post(url("Counter", counter, "increment"), content=b"").json()["result"] == 1  # no body: none
