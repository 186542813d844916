"""API keys over HTTP, in-process (solo/testing/inprocess.py), on both backends: SQLite + fakeredis, Postgres + Redis.

The rules as the API applies them: 401 without a valid key, 403 outside the key's scope, 429
past its rate; a warm key costs no database read; a revoked key stops working within the
cache's life; the key is kept nowhere. Real processes: tests/e2e/test_auth.py.
"""

from __future__ import annotations

import time
import uuid

import pytest

from solo.objects.state.keys import parse_token
from solo.testing.inprocess import InProcessSystem

pytestmark = pytest.mark.system(auth="keys")

POLL_LIMIT_S = 20.0  # a bound on waiting, not a timing assertion


def unique() -> str:
    return uuid.uuid4().hex


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return error


def test_a_request_without_a_valid_key_is_401_with_a_bearer_challenge(http, keys):
    path = f"/v1/objects/Counter/{unique()}/increment"
    revoked = keys.create("acme", "operator")
    keys.revoke(revoked.key.id)
    key_id, secret = parse_token(keys.create("acme", "operator").token)

    for headers in (
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        bearer("not-a-key"),
        bearer(f"solo_{key_id}_{secret[:-1]}x"),  # the right id, a wrong secret
        bearer(f"solo_{'f' * 16}_{secret}"),  # an id no key has
        bearer(revoked.token),
    ):
        response = http.post(path, json={}, headers=headers)
        assert_error(response, 401, "unauthenticated")
        assert response.headers["www-authenticate"].startswith("Bearer")
    # nothing ran
    assert http.get(path.rsplit("/", 1)[0], headers=bearer(f"solo_{key_id}_{secret}")).status_code == 404


def test_a_key_acts_as_its_tenant_and_scope_and_is_held_to_the_scope(http, keys):
    call = keys.create("acme", "call")
    admin = keys.create("acme", "admin")
    name = unique()
    obj = f"/v1/objects/Counter/{name}"

    assert http.post(f"{obj}/increment", json={"by": 2}, headers=bearer(call.token)).json()["result"] == 2
    assert http.get("/v1/whoami", headers=bearer(call.token)).json() == {
        "key_id": call.key.id,
        "tenant": "acme",
        "scope": "call",
    }
    error = assert_error(http.get(obj, headers=bearer(call.token)), 403, "forbidden")
    assert "needs admin" in error["message"]
    assert_error(http.get("/v1/alarms", headers=bearer(call.token)), 403, "forbidden")

    assert http.get(obj, headers=bearer(admin.token)).json()["name"] == name
    assert http.get("/v1/whoami", headers=bearer(admin.token)).json()["tenant"] == "acme"


def test_open_routes_need_no_key_and_readiness_says_only_ok_or_unavailable(http, system):
    for path in ("/healthz", "/readyz", "/openapi.json"):
        assert http.get(path).status_code == 200, path

    async def broken_ping():
        raise ConnectionError("redis at 10.1.2.3:6379 refused: secret detail")

    system.app.state.api.redis.ping = broken_ping
    response = http.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "checks": {"redis": "unavailable", "database": "ok"}}


def test_a_warm_key_costs_no_database_read(http, keys, system):
    new = keys.create("acme", "call")
    path = f"/v1/objects/Counter/{unique()}/increment"
    cache = system.app.state.api.auth.cache
    cache.ttl_s = 3600.0  # no entry expires during the test, however slow the machine
    assert http.post(path, json={}, headers=bearer(new.token)).status_code == 200
    reads = cache.reads

    for _ in range(20):
        assert http.post(path, json={}, headers=bearer(new.token)).status_code == 200

    assert cache.reads == reads


def test_a_revoked_key_stops_working_within_seconds(http, keys):
    new = keys.create("acme", "call")
    path = f"/v1/objects/Counter/{unique()}/increment"
    assert http.post(path, json={}, headers=bearer(new.token)).status_code == 200  # cached now

    keys.revoke(new.key.id)

    deadline = time.monotonic() + POLL_LIMIT_S
    while (status := http.post(path, json={}, headers=bearer(new.token)).status_code) == 200:
        assert time.monotonic() < deadline, "the revoked key still works"
        time.sleep(0.1)
    assert status == 401


def test_a_key_past_its_rate_gets_429_with_retry_after(http, keys):
    new = keys.create("acme", "call", rate="3/minute")
    other = keys.create("acme", "call")  # no rate: not limited, and not counted with the first
    path = f"/v1/objects/Counter/{unique()}/increment"

    statuses = [http.post(path, json={}, headers=bearer(new.token)).status_code for _ in range(3)]
    limited = http.post(path, json={}, headers=bearer(new.token))

    assert statuses == [200, 200, 200]
    assert_error(limited, 429, "rate_limited")
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert all(http.post(path, json={}, headers=bearer(other.token)).status_code == 200 for _ in range(5))


def test_the_key_is_kept_nowhere_in_redis(http, keys, redis_client, system):
    new = keys.create("acme", "call", rate="100/s")
    _, secret = parse_token(new.token)
    name = unique()
    http.post(f"/v1/objects/Counter/{name}/increment", json={}, headers=bearer(new.token))
    http.post(
        f"/v1/objects/Counter/{name}/increment",
        json={},
        headers={**bearer(new.token), "Prefer": "respond-async", "Idempotency-Key": unique()},
    )

    prefix = system.settings.key_prefix
    found = []
    for key in redis_client.scan_iter(match=f"{prefix}:*"):
        kind = redis_client.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "string":
            found.append(redis_client.get(key))
        elif kind == "list":
            found.extend(redis_client.lrange(key, 0, -1))
        elif kind == "hash":
            found.extend(redis_client.hgetall(key).values())
        elif kind == "zset":
            found.extend(m for m, _ in redis_client.zrange(key, 0, -1, withscores=True))
    assert found, "the calls left call records"
    assert not any(secret.encode() in (v if isinstance(v, bytes) else str(v).encode()) for v in found)


def test_with_auth_off_every_request_is_the_operator_of_tenant_default(settings, redis_client, async_redis_client):
    system = InProcessSystem(settings.with_changes(auth="off"), redis_client, async_redis_client)
    with system.running() as http:
        name = unique()
        assert http.get("/v1/whoami").json() == {"key_id": None, "tenant": "default", "scope": "operator"}
        assert http.post(f"/v1/objects/Counter/{name}/increment", json={}).status_code == 200
        assert http.get(f"/v1/objects/Counter/{name}").status_code == 200
        assert http.get("/v1/alarms").status_code == 200
        assert http.delete(f"/v1/objects/Counter/{name}/mailbox").status_code == 200
