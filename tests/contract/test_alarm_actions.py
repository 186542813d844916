"""An operator cancels one alarm or makes it due now, over HTTP and the CLI, on both backends.

Both go through the object (a call in its mailbox), so its own table, the shared index and the
scheduler's time index agree afterwards. The scheduler is stepped by hand on a fake clock.
"""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa

from solo.cli.main import main as solo
from solo.objects.coordination.keys import Keys
from solo.objects.state.schema import alarms_table
from solo.testing import ManualClock
from solo.testing.inprocess import InProcessSystem
from tests.contract.test_client import serving

SECOND = 1000
HOUR = 3600 * SECOND


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def system(settings, redis_client, async_redis_client, clock):
    return InProcessSystem(settings, redis_client, async_redis_client, clock_ms=clock)


@pytest.fixture
def http(system):
    with system.running() as client:
        assert system.scheduler.lead()
        yield client


def call(http, object_name: str, method: str, **args):
    response = http.post(f"/v1/objects/Alarmed/{object_name}/{method}", json=args)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def index_rows(system, name: str) -> list[dict]:
    with system.engine.connect() as conn:
        query = sa.select(alarms_table).where(alarms_table.c.object_name == name)
        return [dict(r) for r in conn.execute(query).mappings()]


def time_index(redis_client, settings, name: str) -> dict[str, float]:
    """The object's entries in the scheduler's time index: alarm name -> due time."""
    entries = redis_client.zrange(Keys(settings.key_prefix).alarms_due, 0, -1, withscores=True)
    found = {}
    for member, score in entries:
        _oid, _cls, object_name, alarm = json.loads(member)
        if object_name == name:
            found[alarm] = score
    return found


def test_cancelling_the_alarm_removes_it_from_the_object_the_index_and_the_scheduler(
    system, http, clock, redis_client, settings
):
    name = uuid.uuid4().hex
    call(http, name, "set_alarm", at_ms=clock() + 10 * SECOND)
    call(http, name, "every", name="beat", seconds=60)
    assert set(time_index(redis_client, settings, name)) == {"_alarm", "beat"}

    response = http.delete(f"/v1/objects/Alarmed/{name}/alarms/_alarm")
    assert response.status_code == 200, response.text
    assert response.json() == {"cancelled": True}

    assert call(http, name, "get_alarm") is None  # the object's own table
    assert [r["name"] for r in index_rows(system, name)] == ["beat"]
    assert set(time_index(redis_client, settings, name)) == {"beat"}
    clock.advance(20 * SECOND)
    assert system.scheduler.tick() == 0

    assert http.delete(f"/v1/objects/Alarmed/{name}/alarms/beat").json() == {"cancelled": True}
    assert call(http, name, "listing") == [] and index_rows(system, name) == []
    assert time_index(redis_client, settings, name) == {}


def test_fire_now_makes_an_alarm_due_at_once_and_the_scheduler_fires_it(system, http, clock, redis_client, settings):
    name = uuid.uuid4().hex
    far = clock() + HOUR
    call(http, name, "set_alarm", at_ms=far)
    assert system.scheduler.tick() == 0

    response = http.post(f"/v1/objects/Alarmed/{name}/alarms/_alarm/fire-now")
    assert response.status_code == 200, response.text
    due = response.json()["due_ms"]
    assert due == clock()
    (row,) = index_rows(system, name)
    assert row["next_ms"] == due
    assert time_index(redis_client, settings, name) == {"_alarm": due}

    assert system.scheduler.tick() == 1
    (fire,) = call(http, name, "fires")  # queued behind the fire: it has run
    assert fire["name"] == "_alarm" and fire["scheduled_ms"] == due
    assert index_rows(system, name) == [] and call(http, name, "get_alarm") is None


def test_fire_now_of_a_schedule_runs_it_once_and_it_goes_on_as_before(system, http, clock):
    name = uuid.uuid4().hex
    start = clock()
    call(http, name, "every", name="beat", seconds=60)
    (before,) = index_rows(system, name)
    assert http.post(f"/v1/objects/Alarmed/{name}/alarms/beat/fire-now").status_code == 200
    clock.advance(SECOND)
    assert system.scheduler.tick() == 1
    assert [f["name"] for f in call(http, name, "fires")] == ["beat"]
    (after,) = index_rows(system, name)
    assert after["next_ms"] == before["next_ms"] and after["next_ms"] > start + SECOND  # its next occurrence


def test_a_failed_alarm_fired_now_runs_again(system, http, clock):
    name = uuid.uuid4().hex
    call(http, name, "set_alarm", at_ms=clock() + SECOND, fail_times=1)
    clock.advance(SECOND)
    assert system.scheduler.tick() == 1
    call(http, name, "get_alarm")  # behind the fire: it has run
    (row,) = index_rows(system, name)
    assert row["retry_count"] == 1  # failed once, retrying later
    assert http.post(f"/v1/objects/Alarmed/{name}/alarms/_alarm/fire-now").status_code == 200
    assert system.scheduler.tick() == 1
    assert [f["retry_count"] for f in call(http, name, "fires")] == [1]  # the retry, run now (fires waits on it)
    assert index_rows(system, name) == []


def test_an_alarm_the_object_does_not_have_is_404_and_the_object_must_exist(http):
    name = uuid.uuid4().hex
    call(http, name, "get_alarm")
    for response in (
        http.delete(f"/v1/objects/Alarmed/{name}/alarms/_alarm"),
        http.post(f"/v1/objects/Alarmed/{name}/alarms/nothing/fire-now"),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "alarm_not_found"
    never = http.delete(f"/v1/objects/Alarmed/{uuid.uuid4().hex}/alarms/_alarm")
    assert never.status_code == 404 and never.json()["error"]["code"] == "object_not_found"
    bad = http.delete(f"/v1/objects/Alarmed/{name}/alarms/-no-")
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_arguments"


def test_another_tenants_alarm_is_out_of_reach(system, http, clock):
    name = uuid.uuid4().hex
    acme = {"Solo-Tenant": "acme"}
    response = http.post(f"/v1/objects/Alarmed/{name}/set_alarm", json={"at_ms": clock() + HOUR}, headers=acme)
    assert response.status_code == 200, response.text
    assert http.delete(f"/v1/objects/Alarmed/{name}/alarms/_alarm").status_code == 404  # tenant default
    assert len(index_rows(system, name)) == 1
    assert http.delete(f"/v1/objects/Alarmed/{name}/alarms/_alarm", headers=acme).json() == {"cancelled": True}
    assert index_rows(system, name) == []


def test_solo_alarms_cancel_and_fire_now_on_the_command_line(system, clock, capsys):
    name = uuid.uuid4().hex
    with serving(system) as url:
        from solo.api.client import Client

        with Client(url) as client:
            ref = client.object("Alarmed", name)
            ref.call("set_alarm", at_ms=clock() + HOUR)
            ref.call("every", name="beat", seconds=60)
        assert solo(["alarms", "fire-now", f"Alarmed/{name}", "--url", url]) == 0
        assert json.loads(capsys.readouterr().out) == {"due_ms": clock()}
        assert solo(["alarms", "cancel", f"Alarmed/{name}", "--schedule", "beat", "--url", url]) == 0
        assert json.loads(capsys.readouterr().out) == {"cancelled": True}
        assert solo(["alarms", "cancel", f"Alarmed/{name}", "--schedule", "beat", "--url", url]) == 1
        assert json.loads(capsys.readouterr().err)["error"]["code"] == "alarm_not_found"
    assert [r["name"] for r in index_rows(system, name)] == ["_alarm"]


def test_the_async_client_acts_on_alarms_and_lists_workers(system, clock):
    import asyncio

    from solo.api.client import AsyncClient

    name = uuid.uuid4().hex

    async def act(url: str) -> tuple[int, bool, list[dict]]:
        async with AsyncClient(url) as client:
            ref = client.object("Alarmed", name)
            await ref.call("set_alarm", at_ms=clock() + HOUR)
            return await ref.fire_alarm_now(), await ref.cancel_alarm(), await client.workers()

    with serving(system) as url:
        due, cancelled, workers = asyncio.run(act(url))
    assert due == clock() and cancelled is True
    assert [w["id"] for w in workers] == [system.settings.worker_id]
    assert index_rows(system, name) == []
