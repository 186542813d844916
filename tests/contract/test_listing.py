"""Listing a tenant's objects a page at a time, and evicting one, over HTTP and the CLI, on both backends."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from solo.cli.main import main as solo
from tests.contract.test_client import POLL_LIMIT_S, serving


def increment(http, name: str, class_name: str = "Counter", tenant: str | None = None) -> None:
    headers = {"Solo-Tenant": tenant} if tenant else {}
    response = http.post(f"/v1/objects/{class_name}/{name}/increment", json={}, headers=headers)
    assert response.status_code == 200, response.text


def listed(http, **params) -> dict:
    response = http.get("/v1/objects", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def every_page(http, **params) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = listed(http, **params, **({"cursor": cursor} if cursor else {}))
        pages.append([f"{o['class']}/{o['name']}" for o in page["objects"]])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages


def test_pages_follow_each_other_in_class_and_name_order_with_filters(http):
    run = uuid.uuid4().hex[:6]
    names = [f"{run}-{i:02d}" for i in range(7)]
    for name in reversed(names):
        increment(http, name)
    assert http.post(f"/v1/objects/Fragile/{run}-f/add", json={"text": "t"}).status_code == 200
    increment(http, f"other-{run}")

    pages = every_page(http, limit=3, prefix=run)
    assert pages == [
        ["Counter/" + n for n in names[:3]],
        ["Counter/" + n for n in names[3:6]],
        ["Counter/" + names[6], f"Fragile/{run}-f"],
    ]
    assert every_page(http, limit=100, prefix=run, **{"class": "Fragile"}) == [[f"Fragile/{run}-f"]]
    counters = [ref for page in every_page(http, limit=2, **{"class": "Counter"}) for ref in page]
    assert counters == sorted(counters) and len(counters) == len(set(counters))
    assert {f"Counter/{n}" for n in names} | {f"Counter/other-{run}"} <= set(counters)


def test_a_listed_object_shows_its_state_size_activity_and_alarms_while_active(http):
    name = uuid.uuid4().hex
    increment(http, name)
    at = 4_000_000_000_000
    assert http.post(f"/v1/objects/Alarmed/{name}/set_alarm", json={"at_ms": at}).status_code == 200
    (counter,) = listed(http, prefix=name, **{"class": "Counter"})["objects"]
    assert counter["active"] and counter["served"] and counter["epoch"] >= 1 and counter["queued_calls"] == 0
    assert counter["state_bytes"] > 0  # current while active: shipped with each commit
    assert (counter["alarms_pending"], counter["alarms_failed"]) == (0, 0)
    (alarmed,) = listed(http, prefix=name, **{"class": "Alarmed"})["objects"]
    assert (alarmed["alarms_pending"], alarmed["alarms_failed"]) == (1, 0)
    info = http.get(f"/v1/objects/Counter/{name}").json()
    assert info["state_bytes"] == counter["state_bytes"] and info["last_active_at"] == counter["last_active_at"]


def test_another_tenants_objects_are_not_listed(http):
    name = uuid.uuid4().hex
    increment(http, name, tenant="acme")
    assert listed(http, prefix=name)["objects"] == []
    response = http.get("/v1/objects", params={"prefix": name}, headers={"Solo-Tenant": "acme"})
    assert [o["tenant"] for o in response.json()["objects"]] == ["acme"]


@pytest.mark.parametrize(
    "params, status",
    [
        ({"limit": "0"}, 422),
        ({"limit": "1001"}, 422),
        ({"limit": "ten"}, 422),
        ({"cursor": "not-a-cursor"}, 422),
        ({"cursor": "WyJDb3VudGVyIl0"}, 422),  # valid base64 and JSON, but not a (class, name)
        ({"prefix": "a\x00b"}, 422),
        ({"class": "not a class"}, 400),
        ({"colour": "blue"}, 422),
    ],
)
def test_bad_listing_parameters_are_refused(http, params, status):
    response = http.get("/v1/objects", params=params)
    assert response.status_code == status, response.text


def test_an_evicted_object_is_hydrated_afresh_by_its_next_call_with_its_state(http):
    name = uuid.uuid4().hex
    increment(http, name)
    increment(http, name)
    first = http.get(f"/v1/objects/Counter/{name}").json()["epoch"]  # above the epoch floor: maybe not 1
    evicted = http.post(f"/v1/objects/Counter/{name}/evict")
    assert evicted.status_code == 200 and evicted.json() == {"evicting": True}
    # The request reaches the owner before the next call does (one wake list, in order), and the
    # owner lets go before running anything more: the next call needs a new activation.
    reply = http.post(f"/v1/objects/Counter/{name}/increment", json={})
    assert reply.json()["result"] == 3
    info = http.get(f"/v1/objects/Counter/{name}").json()
    assert info["epoch"] == first + 1


def test_evicting_an_object_no_worker_runs_says_so_and_one_never_called_is_not_found(system, http):
    assert http.post(f"/v1/objects/Counter/{uuid.uuid4().hex}/evict").status_code == 404
    name = uuid.uuid4().hex
    increment(http, name)
    assert http.post(f"/v1/objects/Counter/{name}/evict").json() == {"evicting": True}
    deadline = time.monotonic() + POLL_LIMIT_S  # a bound, not a timing: the worker lets go on its own thread
    while http.get(f"/v1/objects/Counter/{name}").json()["active"]:
        assert time.monotonic() < deadline, "the activation did not end"
        time.sleep(0.01)
    assert http.post(f"/v1/objects/Counter/{name}/evict").json() == {"evicting": False}
    evictions = system.host.metrics.registry.get_sample_value("solo_evictions_total", {"reason": "operator"})
    assert evictions == 1


def test_solo_objects_ls_and_evict_on_the_command_line(system, capsys):
    name = uuid.uuid4().hex
    with serving(system) as url:
        from solo.api.client import Client

        with Client(url) as client:
            client.object("Counter", name).call("increment")
        assert solo(["objects", "ls", "--url", url, "--class", "Counter", "--prefix", name, "--json"]) == 0
        listing = json.loads(capsys.readouterr().out)
        assert [o["name"] for o in listing["objects"]] == [name] and listing["next_cursor"] is None
        assert solo(["objects", "ls", "--url", url, "--prefix", name]) == 0
        table = capsys.readouterr().out
        assert f"Counter/{name}" in table and "yes" in table
        assert solo(["objects", "evict", f"Counter/{name}", "--url", url]) == 0
        assert json.loads(capsys.readouterr().out) == {"evicting": True}


def test_state_size_and_last_activity_move_with_each_commit_while_the_object_stays_active(system, http):
    """Not only at eviction: every shipment carries them, in the catalog row it moves anyway."""
    name = uuid.uuid4().hex
    assert http.post(f"/v1/objects/Bulky/{name}/grow", json={"kib": 4}).json()["result"] == 4
    first = http.get(f"/v1/objects/Bulky/{name}").json()
    time.sleep(0.01)  # so that the next commit's time differs from the first's (times are not compared to a bound)
    assert http.post(f"/v1/objects/Bulky/{name}/grow", json={"kib": 256}).json()["result"] == 260
    second = http.get(f"/v1/objects/Bulky/{name}").json()

    assert first["active"] and second["active"] and second["epoch"] == first["epoch"]  # never evicted between
    assert second["state_bytes"] >= first["state_bytes"] + 256 * 1024
    assert second["last_active_at"] > first["last_active_at"]
    (shown,) = listed(http, prefix=name, **{"class": "Bulky"})["objects"]
    assert (shown["state_bytes"], shown["last_active_at"]) == (second["state_bytes"], second["last_active_at"])
