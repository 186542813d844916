"""API keys against real processes: `solo api` with SOLO_AUTH=keys (two of them) and one with off,
a worker, the real Redis and Postgres; and `solo dev`, as `make run` runs it.

Guarantee 9: nobody gets in without a key, a key gets only what its scope allows, and only in
its tenant: two tenants' objects of the same name are two objects, and what one tenant holds
is not found by another.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
import sqlalchemy as sa

from solo.objects.state.keys import SCOPES, KeyStore, NewKey, parse_token
from solo.objects.state.schema import api_keys_table, make_engine
from solo.testing.cluster import Cluster
from tests import REPO
from tests.e2e.conftest import module_cluster

POLL_LIMIT_S = 15.0  # a bound on waiting for a revocation to be seen (promised: within 5 s), not a timing


@dataclass
class AuthSystem:
    cluster: Cluster
    keyed: list[str]  # two API processes with SOLO_AUTH=keys
    open_url: str  # one with SOLO_AUTH=off
    keys: KeyStore
    log_dir: Path

    def create(self, tenant: str, scope: str, **kwargs) -> NewKey:
        return self.keys.create(tenant, scope, **kwargs)


@pytest.fixture(scope="module")
def auth_cluster(real_redis_url, postgres_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("auth")
    objects = "solo.examples,tests.objects"
    with module_cluster(real_redis_url, postgres_url, tmp, pythonpath=REPO, auth="keys", SOLO_OBJECTS=objects) as (
        cluster,
        engine,
    ):
        cluster.start_worker()
        keyed = [cluster.start_api(), cluster.start_api()]
        open_url = cluster.start_api(SOLO_AUTH="off")
        yield AuthSystem(cluster, keyed, open_url, KeyStore(engine), tmp)


def bearer(key: NewKey | str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key if isinstance(key, str) else key.token}"}


def unique() -> str:
    return uuid.uuid4().hex[:12]


# -- 401 --------------------------------------------------------------------------------------

PROTECTED = [
    ("POST", "/v1/objects/Counter/{name}/increment"),
    ("GET", "/v1/calls/{call_id}"),
    ("GET", "/v1/whoami"),
    ("GET", "/v1/objects/Counter/{name}"),
    ("GET", "/v1/objects/Counter/{name}/export"),
    ("PUT", "/v1/objects/Counter/{name}/import"),
    ("POST", "/v1/objects/Counter/{name}/restore"),
    ("DELETE", "/v1/objects/Counter/{name}"),
    ("DELETE", "/v1/objects/Counter/{name}/mailbox"),
    ("GET", "/v1/alarms"),
    ("GET", "/v1/no-such-route"),
]


def test_every_protected_route_is_401_without_a_valid_key_and_open_routes_need_none(auth_cluster):
    real = auth_cluster.create("acme", "operator")
    key_id, secret = parse_token(real.token)
    bad_keys = [None, "not-a-key", f"solo_{key_id}_{secret[::-1]}", f"solo_{'e' * 16}_{secret}"]
    with httpx.Client(base_url=auth_cluster.keyed[0], timeout=30) as http:
        for method, template in PROTECTED:
            path = template.format(name=unique(), call_id=unique())
            for bad in bad_keys:
                response = http.request(method, path, headers=bearer(bad) if bad else {})
                assert response.status_code == 401, (method, path, bad, response.text)
                assert response.json()["error"]["code"] == "unauthenticated"
                assert response.headers["www-authenticate"].startswith("Bearer")
        for path in ("/healthz", "/readyz", "/openapi.json"):
            assert http.get(path).status_code == 200, path
        assert http.get("/readyz").json() == {"status": "ok", "checks": {"redis": "ok", "database": "ok"}}


# -- 403: each scope on each route ------------------------------------------------------------

# (method, path template, body, the least scope allowed)
ROUTES = [
    ("POST", "/v1/objects/Counter/{name}/increment", {}, "call"),
    ("GET", "/v1/calls/{call_id}", None, "call"),
    ("GET", "/v1/whoami", None, "call"),
    ("GET", "/v1/objects/Counter/{name}", None, "admin"),
    ("GET", "/v1/objects/Counter/{name}/export", None, "admin"),
    ("PUT", "/v1/objects/Counter/{name}/import", b"not a database", "admin"),
    ("POST", "/v1/objects/Counter/{name}/restore", {"seq": 1}, "admin"),
    ("DELETE", "/v1/objects/Counter/{other}", None, "admin"),
    ("DELETE", "/v1/objects/Counter/{name}/mailbox", None, "admin"),
    ("GET", "/v1/alarms", None, "admin"),
]


@pytest.fixture(scope="module")
def scoped(auth_cluster):
    """A key of each scope, an object that exists and a call id that is known."""
    keys = {scope: auth_cluster.create("acme", scope) for scope in SCOPES}
    name = unique()
    with httpx.Client(base_url=auth_cluster.keyed[0], timeout=30) as http:
        response = http.post(f"/v1/objects/Counter/{name}/increment", json={}, headers=bearer(keys["call"]))
        assert response.status_code == 200, response.text
    return keys, name, response.json()["call_id"]


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("method, template, body, least", ROUTES, ids=[f"{r[0]} {r[1]}" for r in ROUTES])
def test_each_scope_gets_exactly_its_routes(auth_cluster, scoped, scope, method, template, body, least):
    keys, name, call_id = scoped
    path = template.format(name=name, call_id=call_id, other=unique())
    content = body if isinstance(body, bytes) else None
    json_body = body if isinstance(body, dict) else None
    headers = {**bearer(keys[scope]), "Content-Type": "application/octet-stream"} if content else bearer(keys[scope])
    with httpx.Client(base_url=auth_cluster.keyed[1], timeout=30) as http:
        response = http.request(method, path, content=content, json=json_body, headers=headers)
    allowed = SCOPES.index(scope) >= SCOPES.index(least)
    if allowed:
        # Allowed: whatever the route answers (200, or 404/422 for an object or body it does not like)
        assert response.status_code not in (401, 403), response.text
    else:
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "forbidden"


# -- revocation, and the key kept nowhere ---------------------------------------------------------


def test_a_revoked_key_is_refused_by_every_api_process_within_seconds(auth_cluster):
    key = auth_cluster.create("acme", "call")
    path = f"/v1/objects/Counter/{unique()}/increment"
    for url in auth_cluster.keyed:  # warm in both processes' caches
        assert httpx.post(url + path, json={}, headers=bearer(key), timeout=30).status_code == 200

    auth_cluster.keys.revoke(key.key.id)

    for url in auth_cluster.keyed:
        deadline = time.monotonic() + POLL_LIMIT_S
        while (status := httpx.post(url + path, json={}, headers=bearer(key), timeout=30).status_code) == 200:
            assert time.monotonic() < deadline, f"{url} still accepts the revoked key"
            time.sleep(0.1)
        assert status == 401


def test_the_key_is_kept_nowhere_not_in_the_keys_table_redis_or_the_logs(auth_cluster, postgres_url):
    key = auth_cluster.create("acme", "call", rate="1000/s", label="secret search")
    _, secret = parse_token(key.token)
    name = unique()
    for url in auth_cluster.keyed:
        assert httpx.post(f"{url}/v1/objects/Counter/{name}/increment", headers=bearer(key), timeout=30).is_success
        httpx.post(f"{url}/v1/objects/Counter/{name}/nope", headers=bearer(key), timeout=30)  # an error path too

    engine = make_engine(postgres_url)
    try:
        with engine.connect() as conn:
            table = repr(conn.execute(sa.select(api_keys_table)).all())
    finally:
        engine.dispose()
    assert key.key.id in table and "secret search" in table
    assert secret not in table

    client = redis.Redis.from_url(auth_cluster.cluster.env["REDIS_URL"])
    try:
        prefix = auth_cluster.cluster.env["SOLO_KEY_PREFIX"]
        dumped = b"".join(client.dump(k) or b"" for k in client.scan_iter(match=f"{prefix}*"))
    finally:
        client.close()
    assert dumped and secret.encode() not in dumped

    for log in auth_cluster.log_dir.glob("*.log"):
        assert secret not in log.read_text(errors="replace"), log.name


# -- rate limits across processes --------------------------------------------------------------


def test_a_keys_rate_is_shared_by_every_api_process(auth_cluster):
    key = auth_cluster.create("acme", "call", rate="6/minute")
    path = f"/v1/objects/Counter/{unique()}/increment"

    # 12 calls, alternating between the two API processes
    answers = []
    for i in range(12):
        url = auth_cluster.keyed[i % 2]
        answers.append((url, httpx.post(url + path, json={}, headers=bearer(key), timeout=30)))

    statuses = [r.status_code for _, r in answers]
    assert statuses.count(200) == 6, statuses  # not 6 per process: one count for both
    assert statuses[:6] == [200] * 6 and statuses[6:] == [429] * 6
    limited = [(url, r) for url, r in answers if r.status_code == 429]
    assert {url for url, _ in limited} == set(auth_cluster.keyed)
    for _, r in limited:
        assert r.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(r.headers["retry-after"]) <= 60


# -- tenants ------------------------------------------------------------------------------------


def test_two_tenants_same_name_two_objects_and_each_others_calls_are_not_found(auth_cluster):
    acme, globex = auth_cluster.create("acme", "admin"), auth_cluster.create("globex", "admin")
    first, second = auth_cluster.keyed
    obj = f"/v1/objects/Counter/{unique()}"
    with httpx.Client(base_url=first, timeout=30) as a, httpx.Client(base_url=second, timeout=30) as b:
        assert a.post(f"{obj}/increment", json={"by": 7}, headers=bearer(acme)).json()["result"] == 7
        assert b.post(f"{obj}/increment", json={"by": 1}, headers=bearer(globex)).json()["result"] == 1
        assert b.post(f"{obj}/get", headers=bearer(acme)).json()["result"] == 7
        assert a.post(f"{obj}/get", headers=bearer(globex)).json()["result"] == 1

        queued = a.post(f"{obj}/increment", json={}, headers={**bearer(acme), "Prefer": "respond-async"}).json()
        status = f"/v1/calls/{queued['call_id']}"
        assert b.get(status, headers=bearer(acme)).status_code == 200
        refused = b.get(status, headers=bearer(globex))
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "call_not_found"
        assert (
            a.get(f"{obj}/export", headers=bearer(globex)).content
            != a.get(f"{obj}/export", headers=bearer(acme)).content
        )


def test_an_alarm_fires_in_its_objects_tenant(auth_cluster):
    acme, globex = auth_cluster.create("acme", "admin"), auth_cluster.create("globex", "admin")
    obj = f"/v1/objects/Alarmed/{unique()}"
    with httpx.Client(base_url=auth_cluster.keyed[0], timeout=30) as http:
        assert http.post(f"{obj}/fires", headers=bearer(globex)).json()["result"] == []  # globex's, no alarm
        soon = int(time.time() * 1000) + 500
        assert http.post(f"{obj}/set_alarm", json={"at_ms": soon}, headers=bearer(acme)).status_code == 200

        deadline = time.monotonic() + POLL_LIMIT_S
        while not (fired := http.post(f"{obj}/fires", headers=bearer(acme)).json()["result"]):
            assert time.monotonic() < deadline, "acme's alarm did not fire"
            time.sleep(0.1)
        assert [f["name"] for f in fired] == ["_alarm"]
        assert http.post(f"{obj}/fires", headers=bearer(globex)).json()["result"] == []
        listed = http.get("/v1/alarms?class=Alarmed", headers=bearer(globex)).json()["alarms"]
        assert obj.rsplit("/", 1)[1] not in [a["object"]["name"] for a in listed]


# -- SOLO_AUTH=off, and keys made with the CLI -------------------------------------------------


def test_with_auth_off_every_request_acts_as_the_operator_of_tenant_default(auth_cluster):
    name = unique()
    with httpx.Client(base_url=auth_cluster.open_url, timeout=30) as http:
        assert http.get("/v1/whoami").json() == {"key_id": None, "tenant": "default", "scope": "operator"}
        assert http.post(f"/v1/objects/Counter/{name}/increment", json={}).status_code == 200
        assert http.get(f"/v1/objects/Counter/{name}").status_code == 200
        assert http.get("/v1/alarms").status_code == 200


def test_a_key_made_by_the_cli_works_and_the_cli_sends_solo_api_key(auth_cluster):
    env = auth_cluster.cluster.env
    made = subprocess.run(
        [sys.executable, "-m", "solo", "keys", "create", "--tenant", "initech", "--scope", "call"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    token = made.stdout.splitlines()[-1]
    url = auth_cluster.keyed[0]
    assert httpx.get(f"{url}/v1/whoami", headers=bearer(token), timeout=30).json()["tenant"] == "initech"

    name = unique()
    command = [sys.executable, "-m", "solo", "call", f"Counter/{name}", "increment", "by=3", "--url", url]
    called = subprocess.run(command, env={**env, "SOLO_API_KEY": token}, capture_output=True, text=True, timeout=60)
    assert called.returncode == 0, called.stderr
    assert called.stdout.strip() == "3"
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "unauthenticated" in refused.stderr


# -- solo dev (make run) -----------------------------------------------------------------------


def test_solo_dev_runs_without_keys_unless_told_and_says_so(solo_dev):
    dev = solo_dev()
    assert "auth is off" in dev.output()
    assert httpx.get(f"{dev.url}/v1/whoami", timeout=30).json() == {
        "key_id": None,
        "tenant": "default",
        "scope": "operator",
    }


def test_solo_dev_with_keys_works_as_production_does(solo_dev):
    # Given `make run` with SOLO_AUTH=keys and no key yet
    dev = solo_dev(SOLO_AUTH="keys")
    path = "/v1/objects/Counter/dev/increment"
    response = httpx.post(dev.url + path, json={}, timeout=30)
    assert response.status_code == 401
    assert "no API key exists yet" in dev.output()  # the API said so, and how to make one

    # When a key is made with the CLI in the same directory (the default shared database: no settings)
    made = dev.solo("keys", "create", "--tenant", "default", "--scope", "operator")
    assert made.returncode == 0, made.stderr
    token = made.stdout.splitlines()[-1]

    # Then it is accepted, and calls run
    response = httpx.post(dev.url + path, json={"by": 2}, headers=bearer(token), timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["result"] == 2
    assert token not in dev.output()
