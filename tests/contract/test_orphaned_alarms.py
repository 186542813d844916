"""Alarms of a class no longer served: listed as orphaned, and purged from the scheduler's index, on both backends.

An object of class `Retired` (no code defines it: as after a deploy that removed a class)
left an alarm in the shared index and in Redis's time index, as its worker shipped and
announced it when the class was still served.
"""

from __future__ import annotations

import json
import uuid

from solo.objects.context import wall_clock_ms
from solo.objects.coordination.alarm_queue import AlarmQueue
from solo.objects.coordination.keys import Keys
from solo.objects.naming import object_id
from solo.objects.state.schema import alarms_table
from solo.testing.inprocess import InProcessSystem


def leave_alarm(system, redis_client, class_name: str, name: str, due_ms: int) -> None:
    """The index row and time index entry an object's worker wrote for its alarm."""
    settings = system.settings
    oid = object_id(settings.namespace, class_name, name)
    with system.engine.begin() as conn:
        conn.execute(
            alarms_table.insert().values(
                object_id=oid,
                name="_alarm",
                namespace=settings.namespace,
                tenant="default",
                class_name=class_name,
                object_name=name,
                method="alarm",
                spec="once",
                scheduled_ms=due_ms,
                next_ms=due_ms,
                retry_count=0,
                failures=0,
            )
        )
    queue = AlarmQueue(redis_client, Keys(settings.key_prefix), int(settings.alarm_horizon_s * 1000))
    queue.announce(oid, class_name, name, [("_alarm", due_ms)], wall_clock_ms())


def due_names(redis_client, settings) -> set[str]:
    members = redis_client.zrange(Keys(settings.key_prefix).alarms_due, 0, -1)
    return {name for _oid, _cls, name, _alarm in map(json.loads, members)}


def test_an_unserved_classs_alarms_are_orphaned_and_purged_from_index_and_scheduler(system, http, redis_client):
    name = uuid.uuid4().hex
    leave_alarm(system, redis_client, "Retired", name, wall_clock_ms() + 30_000)
    assert name in due_names(redis_client, system.settings)

    (alarm,) = http.get("/v1/alarms", params={"class": "Retired"}).json()["alarms"]
    assert alarm["object"]["name"] == name and alarm["state"] == "orphaned"
    orphaned = http.get("/v1/alarms", params={"state": "orphaned"}).json()["alarms"]
    assert [a["object"]["name"] for a in orphaned] == [name]
    assert http.get("/v1/alarms", params={"state": "pending", "class": "Retired"}).json()["alarms"] == []

    purged = http.delete("/v1/alarms", params={"class": "Retired"})
    assert purged.status_code == 200 and purged.json() == {"purged": 1}
    assert http.get("/v1/alarms", params={"class": "Retired"}).json()["alarms"] == []
    assert name not in due_names(redis_client, system.settings)


def test_the_alarms_of_a_served_class_are_not_purged(http):
    refused = http.delete("/v1/alarms", params={"class": "Alarmed"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "class_served"


def test_purging_needs_exactly_a_class(http):
    assert http.delete("/v1/alarms").status_code == 422
    assert http.delete("/v1/alarms", params={"class": "Retired", "state": "failed"}).status_code == 422
    assert http.delete("/v1/alarms", params={"class": "no such"}).status_code == 400


def test_the_scheduler_stops_sending_an_orphaned_alarm_and_its_refill_leaves_it_out(system, http, redis_client):
    """With a live worker that does not serve `Retired`, its due alarm is taken out of the time index
    instead of being sent (before, it was sent again every SOLO_ALARM_REDELIVER_S, for ever)."""
    name = uuid.uuid4().hex
    leave_alarm(system, redis_client, "Retired", name, wall_clock_ms() - 1000)  # due
    scheduler = system.scheduler
    assert scheduler.lead()
    assert scheduler.tick() == 0
    assert name not in due_names(redis_client, system.settings)
    oid = object_id(system.settings.namespace, "Retired", name)
    assert scheduler.mailbox.depth(oid) == 0  # no fire was queued
    assert scheduler.metrics.registry.get_sample_value("solo_alarms_orphaned_total") == 1
    assert scheduler.refill() == 0 and name not in due_names(redis_client, system.settings)
    (alarm,) = http.get("/v1/alarms", params={"class": "Retired"}).json()["alarms"]
    assert alarm["state"] == "orphaned"  # still in the shared index, for an operator to purge or cancel


def test_with_no_live_worker_nothing_is_judged_orphaned(settings, redis_client, async_redis_client):
    system = InProcessSystem(settings, redis_client, async_redis_client)  # its host is not started: no worker
    name = uuid.uuid4().hex
    leave_alarm(system, redis_client, "Retired", name, wall_clock_ms() - 1000)
    assert system.scheduler.lead()
    assert system.scheduler.tick() == 1  # sent, as before: whether a class is served is unknown
    system.engine.dispose()


def retired_object(system, name: str) -> str:
    """An object of class `Retired` in the catalog, as its worker left it when the class was served."""
    settings = system.settings
    oid = object_id(settings.namespace, "Retired", name)
    system.catalog.take_over(oid, settings.namespace, "Retired", name, "gone-worker", known_schema=0)
    return oid


def test_info_and_delete_work_for_an_object_whose_class_is_no_longer_served(system, http, redis_client):
    name = uuid.uuid4().hex
    retired_object(system, name)
    leave_alarm(system, redis_client, "Retired", name, wall_clock_ms() + 30_000)

    info = http.get(f"/v1/objects/Retired/{name}")
    assert info.status_code == 200, info.text
    body = info.json()
    assert body["class"] == "Retired" and body["served"] is False and body["epoch"] >= 1
    assert [(a["name"], a["state"]) for a in body["alarms"]] == [("_alarm", "orphaned")]
    assert http.get("/v1/objects", params={"prefix": name}).json()["objects"][0]["served"] is False

    deleted = http.delete(f"/v1/objects/Retired/{name}")
    assert deleted.status_code == 200 and deleted.json() == {"deleted": True}
    assert http.get("/v1/alarms", params={"class": "Retired"}).json()["alarms"] == []
    assert name not in due_names(redis_client, system.settings)
    assert http.post(f"/v1/objects/Retired/{name}/anything", json={}).status_code == 404  # calls still refused


def test_one_orphaned_alarm_is_cancelled_from_the_index_and_cannot_be_fired_now(system, http, redis_client):
    name, other = uuid.uuid4().hex, uuid.uuid4().hex
    leave_alarm(system, redis_client, "Retired", name, wall_clock_ms() + 30_000)
    leave_alarm(system, redis_client, "Retired", other, wall_clock_ms() + 30_000)

    fired = http.post(f"/v1/objects/Retired/{name}/alarms/_alarm/fire-now")
    assert fired.status_code == 404 and fired.json()["error"]["code"] == "unknown_class"
    cancelled = http.delete(f"/v1/objects/Retired/{name}/alarms/_alarm")
    assert cancelled.status_code == 200 and cancelled.json() == {"cancelled": True}
    assert [a["object"]["name"] for a in http.get("/v1/alarms", params={"class": "Retired"}).json()["alarms"]] == [
        other
    ]
    assert due_names(redis_client, system.settings) == {other}
    again = http.delete(f"/v1/objects/Retired/{name}/alarms/_alarm")
    assert again.status_code == 404 and again.json()["error"]["code"] == "alarm_not_found"
