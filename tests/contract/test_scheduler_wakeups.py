"""The leading scheduler sleeps until its next look and is woken by an announcement of an alarm due sooner.

Runs on fakeredis + SQLite and on the real Redis + Postgres, on a fake clock. The scheduler's
loop is driven one `step()` at a time; its sleeps go through `Sleeps`, which records what the
scheduler asked for and waits on the real subscription only as long as the test says (a wake-up
published before the step is taken at once; none is waited for when none is expected). Time
passes by moving the fake clock, as if the scheduler had slept.
"""

import uuid

import pytest

from solo.objects.coordination.alarm_queue import Wakeups
from solo.objects.coordination.keys import Keys
from solo.testing import ManualClock
from solo.testing.inprocess import InProcessSystem
from solo.workers.scheduler import WOKEN_PASS_GAP_MS, Scheduler

SECOND = 1000
FAR = 20 * SECOND  # within the horizon (60 s), beyond the longest sleep of the tests that want it far
WAKE_WAIT_S = 10.0  # a wake-up expected: how long to wait for the message at most (it comes at once)


class Sleeps(Wakeups):
    """The scheduler's wake channel, with its sleeps recorded and bounded by the test."""

    def __init__(self, scheduler: Scheduler) -> None:
        super().__init__(scheduler.client, scheduler.keys)
        self.asked: list[float] = []
        self.expect_wake = False

    def wait(self, timeout_s: float) -> bool:
        self.asked.append(timeout_s)
        return super().wait(WAKE_WAIT_S if self.expect_wake else 0.0)


@pytest.fixture
def clock():
    return ManualClock()


def running_system(settings, redis_client, async_redis_client, clock):
    system = InProcessSystem(settings, redis_client, async_redis_client, clock_ms=clock)
    with system.running() as http:
        system.http = http
        system.sleeps = Sleeps(system.scheduler)
        system.scheduler.wakeups = system.sleeps
        system.scheduler.woken_pass_gap_ms = 0  # a woken scheduler looks at once (the gap has its own test)
        try:
            yield system
        finally:
            system.sleeps.close()


@pytest.fixture
def system(settings, redis_client, async_redis_client, clock):
    yield from running_system(settings, redis_client, async_redis_client, clock)


@pytest.fixture
def long_sleep_system(settings, redis_client, async_redis_client, clock):
    """The longest sleep beyond FAR and the lease's renewal far off: only a wake-up ends a sleep early."""
    changed = settings.with_changes(scheduler_max_sleep_ms=2 * FAR, lease_ttl_ms=6 * FAR)
    yield from running_system(changed, redis_client, async_redis_client, clock)


def call(system, object_name: str, method: str, **args):
    response = system.http.post(f"/v1/objects/Alarmed/{object_name}/{method}", json=args)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def step(system, *, woken: bool = False) -> None:
    system.sleeps.expect_wake = woken
    system.scheduler.step()
    system.settle()  # the fires it sent have run


def test_a_leader_asleep_until_a_far_alarm_is_woken_by_a_nearer_one_and_fires_it_when_due(long_sleep_system, clock):
    system = long_sleep_system
    far, near = uuid.uuid4().hex, uuid.uuid4().hex
    call(system, far, "set_alarm", at_ms=clock() + FAR)
    step(system)  # takes the lease, looks, and sleeps until the far alarm
    assert system.scheduler.leading
    assert system.sleeps.asked[-1] == FAR / SECOND

    # When: an alarm due much sooner is set while it sleeps
    call(system, near, "set_alarm", at_ms=clock() + 2 * SECOND)
    step(system, woken=True)

    # Then: the sleep is cut short, the next step looks at once and sleeps only until the near one
    assert system.scheduler.wait_s() == 0
    step(system)
    assert system.sleeps.asked[-1] == 2.0
    clock.advance(2 * SECOND)
    step(system)
    assert len(call(system, near, "fires")) == 1
    assert call(system, far, "fires") == []
    assert system.sleeps.asked[-1] == (FAR - 2 * SECOND) / SECOND  # back to sleep until the far one


def test_an_alarm_due_after_the_next_look_wakes_no_one(long_sleep_system, clock):
    system = long_sleep_system
    near, later = uuid.uuid4().hex, uuid.uuid4().hex
    call(system, near, "set_alarm", at_ms=clock() + SECOND)
    step(system)
    assert system.sleeps.asked[-1] == 1.0
    queue = system.scheduler.queue
    assert not queue.announce("id", "Alarmed", later, [("_alarm", clock() + 2 * SECOND)], clock())
    assert not queue.announce("id", "Alarmed", later, [("_alarm", None)], clock())  # a cancellation
    assert queue.announce("id", "Alarmed", later, [("_alarm", clock() + SECOND // 2)], clock())


def test_several_alarms_announced_at_once_wake_the_leader_for_the_earliest(long_sleep_system, clock):
    system = long_sleep_system
    name = uuid.uuid4().hex
    step(system)
    assert system.sleeps.asked[-1] == 2 * FAR / SECOND  # nothing waiting: the longest sleep

    call(system, name, "many", prefix="m", count=5, at_ms=clock() + 3 * SECOND)  # one announcement of five
    step(system, woken=True)
    step(system)
    assert system.sleeps.asked[-1] == 3.0
    clock.advance(3 * SECOND + 4)
    step(system)
    assert sorted(f["name"] for f in call(system, name, "fires")) == [f"m{i}" for i in range(5)]


def test_an_announcement_made_since_the_last_look_lowers_the_look_so_only_sooner_ones_wake_again(
    long_sleep_system, clock
):
    system = long_sleep_system
    queue = system.scheduler.queue
    step(system)
    assert queue.announce("a", "Alarmed", "a", [("_alarm", clock() + 10 * SECOND)], clock())
    assert not queue.announce("b", "Alarmed", "b", [("_alarm", clock() + 11 * SECOND)], clock())
    assert queue.announce("c", "Alarmed", "c", [("_alarm", clock() + 9 * SECOND)], clock())
    step(system, woken=True)  # both wake-ups are taken by one wait
    step(system)
    assert system.sleeps.asked[-1] == 9.0


def test_the_api_announcing_an_operators_restore_wakes_the_leader_too(long_sleep_system, clock):
    system = long_sleep_system
    name = uuid.uuid4().hex
    call(system, name, "set_alarm", at_ms=clock() + SECOND)
    seq = system.http.get(f"/v1/objects/Alarmed/{name}").json()["seq"]
    call(system, name, "delete_alarm")
    step(system)
    assert system.sleeps.asked[-1] == 2 * FAR / SECOND  # nothing waiting

    # When: an operator restores the state that had the alarm (the API announces it)
    response = system.http.post(f"/v1/objects/Alarmed/{name}/restore", json={"seq": seq})
    assert response.status_code == 200, response.text
    step(system, woken=True)
    assert call(system, name, "get_alarm") == clock() + SECOND  # hydrated again: the fire below reaches it

    # Then
    step(system)
    assert system.sleeps.asked[-1] == 1.0
    clock.advance(SECOND)
    step(system)
    assert len(call(system, name, "fires")) == 1


def test_a_lost_wake_up_delays_an_alarm_by_at_most_the_longest_sleep(system, clock, settings):
    far, near = uuid.uuid4().hex, uuid.uuid4().hex
    longest_s = settings.scheduler_max_sleep_ms / SECOND
    call(system, far, "set_alarm", at_ms=clock() + FAR)
    step(system)
    assert system.sleeps.asked[-1] <= longest_s  # not until the far alarm

    # When: the wake-up for a nearer alarm is lost (no one listens when it is published)
    system.sleeps.close()
    call(system, near, "set_alarm", at_ms=clock() + 100)
    step(system)  # listens again, but the wake-up is gone: it sleeps on as it meant to
    assert system.scheduler.wait_s() <= longest_s
    assert call(system, near, "fires") == []

    # Then: once the longest sleep has passed, the next look finds the alarm and fires it
    clock.advance(settings.scheduler_max_sleep_ms)
    step(system)
    assert len(call(system, near, "fires")) == 1
    assert call(system, far, "fires") == []


def test_without_a_recorded_look_every_alarm_announced_wakes_whoever_listens(system, clock, redis_client, settings):
    # A Redis restart loses the look; until the next pass records one, announcements wake the leader.
    queue = system.scheduler.queue
    redis_client.delete(Keys(settings.key_prefix).scheduler_look)
    assert queue.announce("a", "Alarmed", "a", [("_alarm", clock() + FAR)], clock())
    assert queue.announce("b", "Alarmed", "b", [("_alarm", clock() + FAR)], clock())
    step(system)  # takes the lease and records its look
    assert not queue.announce("c", "Alarmed", "c", [("_alarm", clock() + FAR)], clock())


def test_a_new_leader_looks_at_once(long_sleep_system, clock, settings, redis_client):
    system = long_sleep_system
    name = uuid.uuid4().hex
    step(system)
    call(system, name, "set_alarm", at_ms=clock() + SECOND)
    system.sleeps.close()  # the leader is gone without a word: its wake-ups go nowhere
    system.scheduler.lease.release()
    successor = Scheduler(
        system.scheduler.settings.with_changes(worker_id=f"next-{uuid.uuid4().hex[:8]}"),
        redis_client,
        system.scheduler.index,
        system.host.activate,
        clock_ms=clock,
    )
    successor.wakeups = Sleeps(successor)
    try:
        successor.step()  # takes the lease, refills and looks: the alarm is in its plan
        assert successor.leading and successor.wakeups.asked[-1] == 1.0
        clock.advance(SECOND)
        successor.step()
        system.settle()
        assert len(call(system, name, "fires")) == 1
    finally:
        successor.wakeups.close()


def test_wake_ups_in_a_stream_start_a_pass_no_sooner_than_the_gap_after_the_last_one(long_sleep_system, clock):
    system = long_sleep_system
    gap_ms = system.scheduler.woken_pass_gap_ms = WOKEN_PASS_GAP_MS
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    step(system)  # a pass, then asleep: nothing waits
    call(system, first, "set_alarm", at_ms=clock())  # due at once
    step(system, woken=True)
    assert system.scheduler.wait_s() == gap_ms / SECOND  # the last pass began just now

    # When: another alarm due at once is set before the gap has passed
    clock.advance(gap_ms // 2)
    call(system, second, "set_alarm", at_ms=clock())
    step(system)  # no wake-up (the first lowered the look to its time) and no pass: the gap has not passed
    assert call(system, first, "fires") == []

    # Then: one pass sends both
    clock.advance(gap_ms // 2)
    step(system)
    assert len(call(system, first, "fires")) == 1 and len(call(system, second, "fires")) == 1
