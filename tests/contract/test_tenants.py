"""Tenants over HTTP, on both backends: an object's identity includes its tenant.

Tenant a's Counter/x and tenant b's Counter/x are two objects, with separate state, calls,
alarms and exports; what one tenant holds is not found by another (404, never 403). An
operator key acts in the tenant it names with Solo-Tenant; other keys cannot name one.
Real processes, objects calling objects and alarms: tests/e2e/test_tenants.py.
"""

from __future__ import annotations

import uuid

import pytest

from solo.objects.naming import object_id

pytestmark = pytest.mark.system(auth="keys")


def unique() -> str:
    return uuid.uuid4().hex


def as_key(token: str, tenant: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if tenant is not None:
        headers["Solo-Tenant"] = tenant
    return headers


def test_the_same_name_in_two_tenants_is_two_objects(http, keys):
    acme, globex = keys.create("acme", "admin").token, keys.create("globex", "admin").token
    obj = f"/v1/objects/Counter/{unique()}"

    assert http.post(f"{obj}/increment", json={"by": 5}, headers=as_key(acme)).json()["result"] == 5
    assert http.post(f"{obj}/increment", json={"by": 1}, headers=as_key(globex)).json()["result"] == 1
    assert http.post(f"{obj}/increment", json={"by": 1}, headers=as_key(acme)).json()["result"] == 6

    acme_info, globex_info = http.get(obj, headers=as_key(acme)).json(), http.get(obj, headers=as_key(globex)).json()
    assert (acme_info["tenant"], globex_info["tenant"]) == ("acme", "globex")
    assert acme_info["id"] != globex_info["id"]
    exported = [http.get(f"{obj}/export", headers=as_key(token)).content for token in (acme, globex)]
    assert exported[0] != exported[1]


def test_another_tenants_object_and_call_are_not_found(http, keys):
    acme, globex = keys.create("acme", "admin").token, keys.create("globex", "admin").token
    obj = f"/v1/objects/Counter/{unique()}"
    assert http.post(f"{obj}/increment", json={}, headers=as_key(acme)).status_code == 200  # it exists
    accepted = http.post(f"{obj}/increment", json={}, headers={**as_key(acme), "Prefer": "respond-async"})
    call_id = accepted.json()["call_id"]

    assert http.get(f"/v1/calls/{call_id}", headers=as_key(acme)).status_code == 200
    response = http.get(f"/v1/calls/{call_id}", headers=as_key(globex))
    assert response.status_code == 404 and response.json()["error"]["code"] == "call_not_found"
    for method, path in (("GET", obj), ("GET", f"{obj}/export"), ("DELETE", obj)):
        response = http.request(method, path, headers=as_key(globex))
        assert response.status_code == 404, (method, path, response.text)
    assert http.get(obj, headers=as_key(acme)).status_code == 200  # globex's DELETE touched nothing


def test_the_same_idempotency_key_in_two_tenants_is_two_calls(http, keys):
    acme, globex = keys.create("acme", "call").token, keys.create("globex", "call").token
    path = f"/v1/objects/Counter/{unique()}/increment"

    first = http.post(path, json={"by": 2}, headers={**as_key(acme), "Idempotency-Key": "k1"}).json()
    second = http.post(path, json={"by": 3}, headers={**as_key(globex), "Idempotency-Key": "k1"}).json()
    again = http.post(path, json={"by": 2}, headers={**as_key(acme), "Idempotency-Key": "k1"}).json()

    assert (first["result"], second["result"], again["result"]) == (2, 3, 2)
    assert first["call_id"] != second["call_id"] and again["call_id"] == first["call_id"]


def test_alarm_listings_show_the_tenants_own_alarms_only(http, keys):
    acme, globex = keys.create("acme", "admin").token, keys.create("globex", "admin").token
    name = unique()
    later = {"at_ms": 4_000_000_000_000}
    assert http.post(f"/v1/objects/Alarmed/{name}/set_alarm", json=later, headers=as_key(acme)).status_code == 200

    def listed(token: str) -> list[str]:
        alarms = http.get("/v1/alarms?class=Alarmed", headers=as_key(token)).json()["alarms"]
        return [a["object"]["name"] for a in alarms]

    assert name in listed(acme)
    assert name not in listed(globex)
    assert [a["name"] for a in http.get(f"/v1/objects/Alarmed/{name}", headers=as_key(acme)).json()["alarms"]]
    assert http.get(f"/v1/objects/Alarmed/{name}", headers=as_key(globex)).status_code == 404


def test_objects_call_and_send_within_their_own_tenant(http, keys):
    acme, globex = keys.create("acme", "admin").token, keys.create("globex", "admin").token
    relay, tally = f"/v1/objects/Relay/{unique()}", f"Tally/{unique()}"

    def call(path: str, token: str, **body):
        response = http.post(path, json=body, headers=as_key(token))
        assert response.status_code == 200, response.text
        return response.json()["result"]

    assert call(f"{relay}/ask", acme, target=tally, method="add", args={"tag": "waited"}) == 1
    assert call(f"{relay}/tell", acme, target=tally, tags=["sent"]) == 1
    assert call(f"/v1/objects/{tally}/tags", acme) == ["waited", "sent"]
    assert call(f"/v1/objects/{tally}/tags", globex) == []


def test_an_operator_names_the_tenant_others_cannot(http, keys):
    acme = keys.create("acme", "admin").token
    operator = keys.create("ops", "operator").token
    obj = f"/v1/objects/Counter/{unique()}"
    assert http.post(f"{obj}/increment", json={"by": 4}, headers=as_key(acme)).json()["result"] == 4

    assert http.get(obj, headers=as_key(operator, "acme")).json()["state_bytes"] >= 0
    assert http.get(obj, headers=as_key(operator)).status_code == 404  # its own tenant, "ops", has no such object
    response = http.get(obj, headers=as_key(acme, "globex"))
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    assert http.get(obj, headers=as_key(acme, "acme")).status_code == 200  # naming its own tenant is fine
    response = http.get(obj, headers=as_key(operator, "no/such tenant"))
    assert response.status_code == 400


def test_tenant_default_keeps_the_ids_objects_had_before_tenants(system):
    # Objects created before tenants existed belong to tenant "default": same ids, same state.
    namespace = system.settings.namespace
    assert object_id(namespace, "Counter", "x", "default") == object_id(namespace, "Counter", "x")
    assert object_id(namespace, "Counter", "x", "acme") != object_id(namespace, "Counter", "x")


def test_only_an_operator_sees_which_worker_holds_an_object(http, keys):
    admin, operator = keys.create("acme", "admin").token, keys.create("acme", "operator").token
    obj = f"/v1/objects/Counter/{unique()}"
    assert http.post(f"{obj}/increment", json={}, headers=as_key(admin)).status_code == 200

    seen_by_operator = http.get(obj, headers=as_key(operator)).json()
    seen_by_admin = http.get(obj, headers=as_key(admin)).json()
    assert seen_by_operator["active"] and seen_by_operator["owner"]  # the worker's id: host, pid
    assert seen_by_admin["active"] and seen_by_admin["owner"] is None
