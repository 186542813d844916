"""Alarms end to end in one process, on a fake clock: API, host, shared index, Redis time index, scheduler.

Runs on fakeredis + SQLite and on the real Redis + Postgres. The scheduler is
stepped by hand (lead, tick); a call made after a tick is queued behind the
fires that tick sent, so its reply shows their effect.
"""

import uuid

import pytest
import sqlalchemy as sa

from solo.objects.alarms import MAX_RETRIES
from solo.objects.coordination.alarm_queue import AlarmQueue, DueAlarm
from solo.objects.coordination.keys import Keys
from solo.objects.state.schema import alarms_table
from solo.testing import ManualClock
from solo.testing.inprocess import InProcessSystem

SECOND = 1000


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def system(settings, redis_client, async_redis_client, clock):
    system = InProcessSystem(settings, redis_client, async_redis_client, clock_ms=clock)
    with system.running() as http:
        system.http = http
        assert system.scheduler.lead()
        yield system


def call(system, object_name: str, method: str, **args):
    response = system.http.post(f"/v1/objects/Alarmed/{object_name}/{method}", json=args)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def index_rows(system, name: str) -> list[dict]:
    with system.engine.connect() as conn:
        query = sa.select(alarms_table).where(alarms_table.c.object_name == name)
        return [dict(r) for r in conn.execute(query).mappings()]


def queued(system) -> int:
    return system.scheduler.queue.size()


def test_an_alarm_is_indexed_when_its_call_commits_and_fires_when_due(system, clock):
    name = uuid.uuid4().hex
    at = clock() + 10 * SECOND
    call(system, name, "set_alarm", at_ms=at)
    (row,) = index_rows(system, name)
    assert (row["name"], row["next_ms"], row["class_name"]) == ("_alarm", at, "Alarmed")
    assert queued(system) == 1  # announced to the scheduler's time index
    listed = system.http.get("/v1/alarms").json()["alarms"]
    assert [(a["object"]["name"], a["kind"], a["next_ms"], a["state"]) for a in listed] == [
        (name, "alarm", at, "pending")
    ]

    assert system.scheduler.tick() == 0  # not due yet
    clock.set(at)
    assert system.scheduler.tick() == 1
    (fire,) = call(system, name, "fires")
    assert fire["scheduled_ms"] == at
    assert index_rows(system, name) == [] and queued(system) == 0
    assert system.scheduler.tick() == 0


def test_an_alarm_set_by_a_failing_call_never_reaches_the_index(system, clock):
    name = uuid.uuid4().hex
    response = system.http.post(f"/v1/objects/Alarmed/{name}/set_alarm_then_fail", json={"at_ms": clock()})
    assert response.status_code == 400
    assert index_rows(system, name) == [] and queued(system) == 0


def test_retries_back_off_and_a_dropped_alarm_is_listed_with_its_error(system, clock):
    name = uuid.uuid4().hex
    call(system, name, "set_alarm", at_ms=clock() + SECOND, fail_times=100)
    for _ in range(MAX_RETRIES + 1):
        (row,) = index_rows(system, name)
        clock.set(row["next_ms"])
        assert system.scheduler.tick() == 1
        call(system, name, "get_alarm")  # behind the fire: it has run
    attempts = call(system, name, "attempts_seen")
    assert [a["retry_count"] for a in attempts] == list(range(MAX_RETRIES + 1))
    (failed,) = system.http.get("/v1/alarms", params={"state": "failed"}).json()["alarms"]
    assert failed["object"]["name"] == name and failed["next_ms"] is None and failed["failures"] == 1
    # The handler's exception by its type: its message is in the worker's log only
    assert failed["last_error"].startswith("RuntimeError: Alarmed.alarm raised RuntimeError")
    assert "failing on purpose" not in failed["last_error"]
    assert system.http.get("/v1/alarms", params={"state": "pending"}).json()["alarms"] == []
    info = system.http.get(f"/v1/objects/Alarmed/{name}").json()
    assert [(a["name"], a["state"]) for a in info["alarms"]] == [("_alarm", "failed")]
    assert queued(system) == 0


def test_a_lost_time_index_is_rebuilt_from_the_shared_database(system, clock, redis_client, key_prefix):
    name = uuid.uuid4().hex
    at = clock() + 5 * SECOND
    call(system, name, "set_alarm", at_ms=at)
    # Redis restarted without persistence: the time index and the scheduler's lease are gone.
    redis_client.delete(Keys(key_prefix).alarms_due, Keys(key_prefix).scheduler)
    assert queued(system) == 0
    assert system.scheduler.lead()  # retaken: refills at the next tick
    clock.set(at)
    assert system.scheduler.tick() == 1
    assert len(call(system, name, "fires")) == 1


def test_only_alarms_within_the_horizon_are_in_redis(system, clock, settings):
    name = uuid.uuid4().hex
    horizon = int(settings.alarm_horizon_s * SECOND)
    call(system, name, "once", name="far", at_ms=clock() + 10 * horizon)
    call(system, name, "once", name="near", at_ms=clock() + SECOND)
    assert queued(system) == 1 and len(index_rows(system, name)) == 2
    clock.advance(10 * horizon - horizon // 2)  # the far one comes within the horizon
    system.scheduler.refill()
    assert queued(system) == 2
    assert system.scheduler.tick() == 1  # the near one, long overdue
    assert [f["name"] for f in call(system, name, "fires")] == ["near"]


def test_a_stale_entry_is_corrected_by_the_fire_it_causes(system, clock, redis_client, key_prefix, settings):
    name = uuid.uuid4().hex
    at = clock() + 30 * SECOND
    call(system, name, "set_alarm", at_ms=at)
    queue = AlarmQueue(redis_client, Keys(key_prefix), int(settings.alarm_horizon_s * SECOND))
    ((object_id, real_due),) = [(d.object_id, d.due_ms) for d in queue.due(at, 10)]
    redis_client.zadd(Keys(key_prefix).alarms_due, {queue.due(at, 10)[0].member: clock()})  # wrong: too early
    assert system.scheduler.tick() == 1  # fires too early: the object refuses and re-announces
    assert call(system, name, "fires") == []
    assert [d.due_ms for d in queue.due(at, 10)] == [real_due]


def test_an_alarm_due_before_the_longest_sleep_is_dispatched_on_the_first_pass_after_it_is_due(system, clock, settings):
    name = uuid.uuid4().hex
    soon = 5
    assert soon < settings.scheduler_max_sleep_ms
    call(system, name, "set_alarm", at_ms=clock() + soon)
    assert system.scheduler.tick() == 0
    assert system.scheduler.wait_s() == soon / SECOND  # sleeps until it is due, not the longest sleep
    clock.advance(soon)
    assert system.scheduler.tick() == 1
    assert len(call(system, name, "fires")) == 1


def test_a_pass_reads_only_what_is_due_however_many_alarms_wait_within_the_horizon(
    system, clock, settings, monkeypatch
):
    waiting = [DueAlarm(f"o{i}", "Alarmed", f"n{i}", "_alarm", clock() + SECOND + i) for i in range(2000)]
    system.scheduler.queue.add_missing(waiting)
    parsed = []
    real_parse = DueAlarm.parse.__func__
    monkeypatch.setattr(DueAlarm, "parse", classmethod(lambda cls, m, s: parsed.append(m) or real_parse(cls, m, s)))
    for _ in range(3):
        assert system.scheduler.tick() == 0
    assert parsed == []  # entries not yet due are never read, only the first one's score
    assert system.scheduler.wait_s() == min(SECOND, settings.scheduler_max_sleep_ms) / SECOND
    clock.set(waiting[1].due_ms)
    due, next_ms = system.scheduler.queue.due_and_next(clock(), 500, clock() + SECOND, 3 * SECOND)
    assert (due, next_ms) == (waiting[:2], waiting[2].due_ms) and len(parsed) == 2


def test_schedules_fire_repeatedly_and_are_listed_by_class(system, clock):
    name = uuid.uuid4().hex
    call(system, name, "every", name="beat", seconds=10)
    for fired in range(1, 4):
        clock.advance(10 * SECOND)
        assert system.scheduler.tick() == 1
        assert len(call(system, name, "fires")) == fired  # behind the fire, so after its announcement
    listed = system.http.get("/v1/alarms", params={"class": "Alarmed"}).json()["alarms"]
    assert [(a["name"], a["spec"], a["kind"]) for a in listed] == [("beat", "every 10s", "schedule")]
    assert system.http.get("/v1/alarms", params={"class": "Counter"}).json()["alarms"] == []
    due_soon = system.http.get("/v1/alarms", params={"due_before": str(clock() + SECOND)}).json()["alarms"]
    assert due_soon == []


def test_deleting_an_object_removes_its_alarms(system, clock):
    name = uuid.uuid4().hex
    call(system, name, "set_alarm", at_ms=clock() + SECOND)
    call(system, name, "every", name="beat", seconds=5)
    assert len(index_rows(system, name)) == 2 and queued(system) == 2
    assert system.http.delete(f"/v1/objects/Alarmed/{name}").status_code == 200
    assert index_rows(system, name) == [] and queued(system) == 0


def test_restoring_an_earlier_state_restores_its_alarms(system, clock):
    name = uuid.uuid4().hex
    call(system, name, "set_alarm", at_ms=clock() + 60 * SECOND)
    seq = system.http.get(f"/v1/objects/Alarmed/{name}").json()["seq"]
    call(system, name, "delete_alarm")
    assert index_rows(system, name) == []
    response = system.http.post(f"/v1/objects/Alarmed/{name}/restore", json={"seq": seq})
    assert response.status_code == 200, response.text
    assert [r["next_ms"] for r in index_rows(system, name)] == [clock() + 60 * SECOND]
    assert queued(system) == 1
    assert call(system, name, "get_alarm") == clock() + 60 * SECOND


@pytest.mark.parametrize(
    "query, status, code",
    [
        ({"state": "bogus"}, 422, "invalid_arguments"),
        ({"due_before": "soon"}, 422, "invalid_arguments"),
        ({"limit": "0"}, 422, "invalid_arguments"),
        ({"class": "not a class"}, 400, "invalid_name"),
        ({"colour": "red"}, 422, "invalid_arguments"),
    ],
)
def test_bad_listing_queries_get_a_clear_error(system, query, status, code):
    response = system.http.get("/v1/alarms", params=query)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_a_pass_sends_every_due_fire_in_one_round_trip_not_one_per_alarm(system, clock, monkeypatch):
    names = [uuid.uuid4().hex for _ in range(20)]
    for name in names:
        call(system, name, "set_alarm", at_ms=clock() + SECOND)
    one_by_one = []
    monkeypatch.setattr(system.scheduler.mailbox, "enqueue", lambda fire: one_by_one.append(fire))
    clock.advance(SECOND)
    assert system.scheduler.tick() == 20
    assert one_by_one == []
    assert all(len(call(system, name, "fires")) == 1 for name in names)
    assert system.scheduler.tick() == 0  # postponed in the same round trip, then done and announced


def test_the_activations_a_pass_asks_for_go_out_in_one_dispatch(system, clock, monkeypatch):
    # Given 40 alarms due at the same moment, of objects nobody holds
    due = [DueAlarm(uuid.uuid4().hex, "Alarmed", f"burst-{i}", "_alarm", clock() + SECOND) for i in range(40)]
    system.scheduler.queue.add_missing(due)
    sent: list[tuple[str, ...]] = []
    dispatch = system.scheduler._dispatch  # noqa: SLF001
    monkeypatch.setattr(system.scheduler, "_dispatch", lambda *ids: sent.append(ids) or dispatch(*ids))
    # When they come due
    clock.set(due[0].due_ms)
    assert system.scheduler.tick() == 40
    # Then one dispatch asks for all 40 activations (Dramatiq's puts them in as few messages as fit)
    assert len(sent) == 1 and sorted(sent[0]) == sorted(alarm.object_id for alarm in due)
    system.settle()
