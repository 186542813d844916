"""Operator actions keep the scheduler's time index in step with the object's alarms, on both backends.

Import, restore and delete rewrite an object's rows in the shared alarm index in
the same transaction as its state; the Redis time index (alarms due within the
horizon) must then lose every entry of the old state, however many there were.
"""

from __future__ import annotations

import json
import uuid

import pytest

from solo.objects.context import wall_clock_ms
from solo.objects.coordination.keys import Keys
from solo.objects.naming import object_id
from solo.testing.inprocess import InProcessSystem

SCHEDULES = 1_200  # more than any listing page (1,000 rows)


@pytest.fixture
def http(settings, redis_client, async_redis_client):
    with InProcessSystem(settings, redis_client, async_redis_client).running() as client:
        yield client


def due_entries(redis_client, settings, name: str) -> list[str]:
    """Names of the object's alarms in the Redis time index."""
    oid = object_id(settings.namespace, "Alarmed", name)
    members = redis_client.zrange(Keys(settings.key_prefix).alarms_due, 0, -1)
    return [alarm for o, _cls, _name, alarm in map(json.loads, members) if o == oid]


def schedule_many(http, name: str) -> None:
    soon = wall_clock_ms() + 30_000  # within the horizon: every one is in Redis
    response = http.post(f"/v1/objects/Alarmed/{name}/many", json={"prefix": "s", "count": SCHEDULES, "at_ms": soon})
    assert response.status_code == 200, response.text


def test_deleting_an_object_with_more_schedules_than_a_page_leaves_none_in_the_time_index(http, redis_client, settings):
    name = uuid.uuid4().hex
    schedule_many(http, name)
    assert len(due_entries(redis_client, settings, name)) == SCHEDULES

    response = http.delete(f"/v1/objects/Alarmed/{name}")
    assert response.status_code == 200, response.text

    assert due_entries(redis_client, settings, name) == []
    listed = http.get("/v1/alarms", params={"class": "Alarmed", "limit": 10_000}).json()["alarms"]
    assert [a for a in listed if a["object"]["name"] == name] == []  # the shared index too


def test_restoring_to_before_the_schedules_removes_them_all_from_the_time_index(http, redis_client, settings):
    name = uuid.uuid4().hex
    response = http.post(f"/v1/objects/Alarmed/{name}/get_alarm", json={})
    assert response.status_code == 200, response.text
    before = http.get(f"/v1/objects/Alarmed/{name}").json()["seq"]
    schedule_many(http, name)
    assert len(due_entries(redis_client, settings, name)) == SCHEDULES

    response = http.post(f"/v1/objects/Alarmed/{name}/restore", json={"seq": before})
    assert response.status_code == 200, response.text

    assert due_entries(redis_client, settings, name) == []
    assert http.post(f"/v1/objects/Alarmed/{name}/listing", json={}).json()["result"] == []
