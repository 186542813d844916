"""Alarms and schedules inside one object, on a fake clock: the object's side of every rule.

Fires are delivered by hand here, as the scheduler would deliver them
(tests/contract/test_alarm_scheduler.py covers the scheduler).
"""

import uuid

import pytest

from solo.objects.alarms import ALARM, FIRE_METHOD, MAX_RETRIES
from solo.objects.calls import Call, Outcome
from solo.objects.naming import new_call_id, object_id
from solo.objects.runtime.instance import ObjectInstance
from solo.testing import ManualClock
from tests.objects import Alarmed

SECOND = 1000


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def alarmed(tmp_path, clock):
    name = uuid.uuid4().hex
    instance = ObjectInstance(
        Alarmed,
        object_id=object_id("test", "Alarmed", name),
        name=name,
        path=tmp_path / f"{name}.sqlite",
        epoch=1,
        clock_ms=clock,
    )
    instance.hydrate()
    yield instance
    instance.close()


def run(instance: ObjectInstance, method: str, **args) -> Outcome:
    call = Call(new_call_id(), instance.object_id, "Alarmed", instance.name, method, args)
    (outcome,) = instance.run_batch([call]).outcomes
    return outcome


def result(instance: ObjectInstance, method: str, **args):
    outcome = run(instance, method, **args)
    assert outcome.ok, outcome.error
    return outcome.result


def fire(instance: ObjectInstance, name: str, due_ms: int) -> Outcome:
    call = Call(
        new_call_id(),
        instance.object_id,
        "Alarmed",
        instance.name,
        FIRE_METHOD,
        {"name": name, "due_ms": due_ms},
    )
    (outcome,) = instance.run_batch([call]).outcomes
    return outcome


def row(instance: ObjectInstance, name: str = ALARM):
    rows = [r for r in instance.alarm_rows() if r.name == name]
    return rows[0] if rows else None


def fire_when_due(instance: ObjectInstance, clock: ManualClock, name: str = ALARM) -> Outcome:
    """Move the clock to the alarm's due time and deliver its fire, as the scheduler would."""
    due = row(instance, name).next_ms
    clock.set(max(clock(), due))
    return fire(instance, name, due)


# -- the single alarm ---------------------------------------------------------


def test_set_replace_get_and_delete(alarmed, clock):
    at = clock() + 10 * SECOND
    assert result(alarmed, "set_alarm", at_ms=at) == at
    assert result(alarmed, "get_alarm") == at
    assert result(alarmed, "set_alarm", at_ms=at + 5) == at + 5  # setting replaces
    assert [r.name for r in alarmed.alarm_rows()] == [ALARM]
    result(alarmed, "delete_alarm")
    assert result(alarmed, "get_alarm") is None
    assert alarmed.alarm_rows() == []


def test_an_alarm_fires_once_after_its_time_and_is_then_gone(alarmed, clock):
    at = clock() + 10 * SECOND
    result(alarmed, "set_alarm", at_ms=at)
    early = fire(alarmed, ALARM, at)  # delivered before its time by the object's clock: not run
    assert early.result == {"fired": False} and result(alarmed, "fires") == []
    clock.set(at)
    outcome = fire_when_due(alarmed, clock)
    assert outcome.result == {"fired": True, "scheduled_ms": at, "retry_count": 0}
    (only,) = result(alarmed, "fires")
    assert (only["scheduled_ms"], only["retry_count"]) == (at, 0)
    assert only["token"] == f"{alarmed.object_id}:{ALARM}:{at}"
    assert result(alarmed, "get_alarm") is None and alarmed.alarm_rows() == []
    assert fire(alarmed, ALARM, at).result == {"fired": False}  # dispatched twice: runs once
    assert len(result(alarmed, "fires")) == 1


def test_a_replaced_alarm_ignores_the_old_fire(alarmed, clock):
    first = clock() + SECOND
    result(alarmed, "set_alarm", at_ms=first)
    result(alarmed, "set_alarm", at_ms=first + 60 * SECOND)
    clock.set(first)
    assert fire(alarmed, ALARM, first).result == {"fired": False}
    assert result(alarmed, "get_alarm") == first + 60 * SECOND


def test_a_failing_handler_is_retried_with_backoff_and_sees_the_retry_count(alarmed, clock):
    at = clock() + SECOND
    result(alarmed, "set_alarm", at_ms=at, fail_times=2)
    due_times = []
    for _ in range(3):
        due_times.append(row(alarmed).next_ms)
        fire_when_due(alarmed, clock)
    assert [a["retry_count"] for a in result(alarmed, "attempts_seen")] == [0, 1, 2]
    assert [a["is_retry"] for a in result(alarmed, "attempts_seen")] == [False, True, True]
    assert [due_times[1] - due_times[0], due_times[2] - due_times[1]] == [2 * SECOND, 4 * SECOND]
    (success,) = result(alarmed, "fires")  # the failed attempts' writes were rolled back
    assert (success["retry_count"], success["scheduled_ms"]) == (2, at)
    assert alarmed.alarm_rows() == []


def test_an_always_failing_alarm_is_dropped_after_six_retries_and_the_failure_is_kept(alarmed, clock):
    result(alarmed, "set_alarm", at_ms=clock() + SECOND, fail_times=100)
    backoffs = []
    for _ in range(MAX_RETRIES + 1):
        fire_when_due(alarmed, clock)
        current = row(alarmed)
        if current.next_ms is not None:
            backoffs.append(current.next_ms - clock())
    assert [a["retry_count"] for a in result(alarmed, "attempts_seen")] == list(range(MAX_RETRIES + 1))
    assert backoffs[:6] == [2000, 4000, 8000, 16000, 32000, 64000]
    dropped = row(alarmed)
    assert dropped.state == "failed" and dropped.next_ms is None and dropped.failures == 1
    assert dropped.last_error.startswith("RuntimeError: Alarmed.alarm raised RuntimeError")
    assert result(alarmed, "get_alarm") is None
    assert fire(alarmed, ALARM, clock()).result == {"fired": False}  # nothing more to fire


def test_an_alarm_set_by_its_own_handler_stands(alarmed, clock):
    at = clock() + SECOND
    result(alarmed, "set_alarm", at_ms=at, then_set_ms=at + 30 * SECOND)
    fire_when_due(alarmed, clock)
    assert result(alarmed, "get_alarm") == at + 30 * SECOND


def test_an_alarm_set_by_a_failed_call_is_not_set(alarmed, clock):
    outcome = run(alarmed, "set_alarm_then_fail", at_ms=clock() + SECOND)
    assert not outcome.ok
    assert result(alarmed, "get_alarm") is None and alarmed.alarm_rows() == []


def test_a_local_instance_reports_no_alarm_changes_as_it_ships_nothing(alarmed, clock):
    at = clock() + SECOND
    call = Call(new_call_id(), alarmed.object_id, "Alarmed", alarmed.name, "set_alarm", {"at_ms": at})
    batch = alarmed.run_batch([call])
    assert batch.outcomes[0].result == at
    # Only shipped changes are announced (the activation announces what a batch shipped).
    assert batch.alarms == []


# -- schedules --------------------------------------------------------------------


def test_an_interval_schedule_fires_repeatedly(alarmed, clock):
    start = clock()
    result(alarmed, "every", name="beat", seconds=10)
    for _ in range(3):
        fire_when_due(alarmed, clock, "beat")
    fires = result(alarmed, "fires")
    assert [f["fired_ms"] - start for f in fires] == [10_000, 20_000, 30_000]
    assert row(alarmed, "beat").next_ms == start + 40_000


def test_a_cron_schedule_fires_repeatedly_on_its_minutes(alarmed, clock):
    clock.set(1_700_000_000_000 - 1_700_000_000_000 % 60_000)  # on a minute
    result(alarmed, "cron", name="five", expression="*/5 * * * *")
    times = []
    for _ in range(3):
        times.append(row(alarmed, "five").next_ms)
        fire_when_due(alarmed, clock, "five")
    assert all(t % 300_000 == 0 for t in times)
    assert [b - a for a, b in zip(times, times[1:])] == [300_000, 300_000]
    assert len(result(alarmed, "fires")) == 3


@pytest.mark.parametrize(
    "policy, grace_s, expected_fires",
    [
        ("catch_up", 60, 6),  # every missed occurrence, one fire each
        ("fire_once", 60, 1),  # one fire for all of them
        ("skip", 2, 0),  # the latest one is 4 s late, past its grace: none
        ("skip", 60, 1),  # the latest one is within its grace: it runs
    ],
)
def test_missed_fire_policies_after_a_pause(alarmed, clock, policy, grace_s, expected_fires):
    start = clock()
    result(alarmed, "every", name="beat", seconds=10, missed=policy, grace_s=grace_s)
    clock.set(start + 64 * SECOND)  # down for a minute: occurrences at 10 s ... 60 s were missed
    delivered = 0
    while delivered < 20 and row(alarmed, "beat").next_ms <= clock():
        fire(alarmed, "beat", row(alarmed, "beat").next_ms)
        delivered += 1
    assert len(result(alarmed, "fires")) == expected_fires
    assert row(alarmed, "beat").next_ms == start + 70 * SECOND  # back on the schedule's own times


def test_schedules_are_listed_replaced_and_cancelled(alarmed, clock):
    at = clock() + 60 * SECOND
    result(alarmed, "once", name="report", at_ms=at)
    result(alarmed, "every", name="beat", seconds=5)
    listing = {s["name"]: s for s in result(alarmed, "listing")}
    assert listing["report"]["next_ms"] == at and listing["report"]["spec"] == "once"
    assert listing["beat"]["spec"] == "every 5s" and listing["beat"]["state"] == "pending"
    result(alarmed, "once", name="report", at_ms=at + 1)  # same name: replaced
    assert {s["name"]: s["next_ms"] for s in result(alarmed, "listing")}["report"] == at + 1
    assert result(alarmed, "cancel", name="report") is True
    assert result(alarmed, "cancel", name="report") is False
    assert [s["name"] for s in result(alarmed, "listing")] == ["beat"]
    clock.set(at + 1)
    assert fire(alarmed, "report", at + 1).result == {"fired": False}


def test_declaring_the_same_schedule_again_keeps_its_timing_and_a_new_definition_replaces_it(alarmed, clock):
    start = clock()
    first = result(alarmed, "every", name="beat", seconds=10)
    clock.advance(6 * SECOND)
    again = result(alarmed, "every", name="beat", seconds=10)  # e.g. from on_start() after an eviction
    assert again["next_ms"] == first["next_ms"] == start + 10 * SECOND
    changed = result(alarmed, "every", name="beat", seconds=20)
    assert changed["next_ms"] == clock() + 20 * SECOND and changed["spec"] == "every 20s"


def test_a_one_shot_schedule_runs_once_and_is_removed(alarmed, clock):
    result(alarmed, "once", name="report", at_ms=clock() + SECOND)
    fire_when_due(alarmed, clock, "report")
    assert [f["name"] for f in result(alarmed, "fires")] == ["report"]
    assert result(alarmed, "listing") == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "_hidden", "method": "tick", "every_s": 1, "kwargs": {"name": "x"}}, "schedule name"),
        ({"name": "a", "method": "nope", "every_s": 1}, "has no method"),
        ({"name": "a", "method": "_record", "every_s": 1}, "public method"),
        ({"name": "a", "method": "tick", "every_s": 1}, "kwargs do not fit"),
        ({"name": "a", "method": "tick", "every_s": 1, "kwargs": {"name": "x"}, "missed": "never"}, "missed must"),
        ({"name": "a", "method": "tick", "cron": "not cron", "kwargs": {"name": "x"}}, "cron"),
    ],
)
def test_bad_schedules_are_refused_and_change_nothing(alarmed, kwargs, message):
    outcome = run(alarmed, "schedule_as_given", spec=kwargs)
    assert not outcome.ok
    assert outcome.error["code"] == "invalid_schedule" and message in outcome.error["message"]
    assert result(alarmed, "listing") == []


def test_set_alarm_needs_an_alarm_handler(tmp_path, clock):
    from solo.examples.counter import Counter

    instance = ObjectInstance(
        Counter, object_id=object_id("test", "Counter", "c"), name="c", path=tmp_path / "c.sqlite", epoch=1
    )
    instance.hydrate()
    try:
        with pytest.raises(Exception, match="no alarm"):
            instance.alarms.set_alarm(clock())
    finally:
        instance.close()
