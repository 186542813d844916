"""solo.testing.LocalSystem: a user's objects tested in-process, on solo's real machinery over fakes."""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import time

import pytest

from solo import CallError, DurableObject, UserError, rpc
from solo.testing import AsyncLocalSystem, LocalSystem


class Account(DurableObject):
    """The shape of the object in the README's "Testing your objects"."""

    migrations = ["CREATE TABLE entries (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL)"]

    def on_start(self) -> None:
        self.calls_since_start = 0  # memory: gone when the object is let go

    @rpc
    def deposit(self, amount: int) -> int:
        if amount <= 0:
            raise UserError("a deposit must be positive", code="bad_amount")
        self.calls_since_start += 1
        self.sql.execute("INSERT INTO entries (amount) VALUES (?)", (amount,))
        return self.total()

    @rpc
    def set_reminder(self, delay_ms: int) -> int:
        at_ms = self.ctx.now_ms() + delay_ms
        self.storage.set_alarm(at_ms)
        return at_ms

    def alarm(self, info) -> None:
        self.storage.put("reminded_at_ms", self.ctx.now_ms())

    @rpc
    def remind_every(self, seconds: int) -> None:
        self.schedule("tick", "on_tick", every_s=seconds)

    def on_tick(self) -> None:
        self.storage.put("ticks", self.storage.get("ticks", 0) + 1)

    @rpc
    def balance(self) -> dict:
        return {
            "total": self.total(),
            "calls_since_start": self.calls_since_start,
            "reminded_at_ms": self.storage.get("reminded_at_ms"),
            "ticks": self.storage.get("ticks", 0),
        }

    @rpc
    def broken(self) -> None:
        raise RuntimeError("a bug in the method")

    def total(self) -> int:
        return self.sql.execute("SELECT COALESCE(SUM(amount), 0) AS t FROM entries").fetchone()["t"]


def test_the_readme_example_runs_calls_alarms_and_a_restart():
    with LocalSystem(objects=[Account]) as system:
        ref = system.object("Account", "acct-1")
        assert ref.deposit(amount=5) == 5
        at_ms = ref.set_reminder(delay_ms=60_000)
        system.clock.advance(seconds=61)
        assert ref.balance()["reminded_at_ms"] == at_ms  # fired at its time, before advance returned
        system.restart()
        assert ref.balance()["total"] == 5


def test_the_clock_starts_at_the_wall_clock_and_moves_only_when_advanced():
    before = time.time_ns() // 1_000_000
    with LocalSystem(objects=[Account]) as system:
        start = system.clock()
        assert before <= start <= time.time_ns() // 1_000_000
        ref = system.object("Account", "clocked")
        at_ms = ref.set_reminder(delay_ms=10_000)
        assert at_ms == start + 10_000  # the object reads the same clock

        system.clock.advance(seconds=9)
        assert ref.balance()["reminded_at_ms"] is None  # not due yet
        system.clock.advance(ms=1_000)
        assert ref.balance()["reminded_at_ms"] == at_ms


def test_schedules_follow_the_clock():
    with LocalSystem(objects=[Account]) as system:
        ref = system.object("Account", "ticking")
        ref.remind_every(seconds=10)
        for _ in range(3):
            system.clock.advance(seconds=10)
        assert ref.balance()["ticks"] == 3


def test_an_hour_passing_fires_each_occurrence_of_a_schedule_at_its_own_time():
    with LocalSystem(objects=[Account]) as system:
        ref = system.object("Account", "hourly")
        ref.remind_every(seconds=60)
        start = system.clock()

        system.clock.advance(seconds=3600)

        assert ref.balance()["ticks"] == 60  # not one late fire for the whole hour
        assert system.clock() == start + 3_600_000


def test_an_alarm_beyond_the_schedulers_horizon_fires_at_its_time():
    with LocalSystem(objects=[Account], settings={"alarm_horizon_s": 60}) as system:
        ref = system.object("Account", "far")
        at_ms = ref.set_reminder(delay_ms=86_400_000)  # a day ahead: not in Redis's time index yet

        system.clock.advance(seconds=2 * 86_400)

        assert ref.balance()["reminded_at_ms"] == at_ms


def test_a_restart_loses_memory_and_keeps_state():
    with LocalSystem(objects=[Account]) as system:
        ref = system.object("Account", "restarted")
        ref.deposit(amount=2)
        ref.deposit(amount=3)
        assert ref.balance()["calls_since_start"] == 2

        system.restart()

        after = ref.balance()
        assert (after["total"], after["calls_since_start"]) == (5, 0)


def test_failures_raise_on_the_callers_side_as_the_client_sees_them():
    with LocalSystem(objects=[Account]) as system:
        ref = system.object("Account", "failing")
        with pytest.raises(CallError) as refused:
            ref.deposit(amount=-1)
        assert (refused.value.status, refused.value.code) == (400, "bad_amount")
        assert "positive" in refused.value.message

        with pytest.raises(CallError) as crashed:
            ref.broken()
        assert crashed.value.status == 500

        with pytest.raises(CallError) as unknown:
            system.object("Nobody", "x").anything()
        assert (unknown.value.status, unknown.value.code) == (404, "unknown_class")

        assert ref.balance()["total"] == 0  # the failed calls changed nothing


def test_a_call_repeated_with_its_idempotency_key_runs_once():
    with LocalSystem(objects=[Account]) as system:
        ref = system.object("Account", "once")
        first = ref.call("deposit", idempotency_key="pay-1", amount=7)
        again = ref.call("deposit", idempotency_key="pay-1", amount=7)
        assert first == again == 7
        assert ref.balance()["total"] == 7


def test_the_shared_database_is_there_for_assertions():
    with LocalSystem(objects=[Account]) as system:
        system.object("Account", "listed").deposit(amount=1)
        rows = system.shared.query("SELECT class_name, name FROM objects WHERE name = :name", name="listed")
        assert rows == [{"class_name": "Account", "name": "listed"}]


def test_objects_may_be_named_by_module():
    with LocalSystem(objects="solo.examples") as system:
        assert system.object("Counter", "by-module").increment(by=2) == 2
        assert system.client.objects(class_name="Counter")["objects"][0]["name"] == "by-module"


def test_objects_must_be_classes_or_module_names():
    with pytest.raises(TypeError):
        LocalSystem(objects=[42])


def test_a_clock_started_in_the_past_fires_what_falls_due_in_a_day():
    start = int(dt.datetime(2020, 2, 28, tzinfo=dt.UTC).timestamp() * 1000)
    with LocalSystem(objects=[Account], now_ms=start) as system:
        ref = system.object("Account", "leap")
        ref.set_reminder(delay_ms=86_400_000)
        system.clock.advance(seconds=86_400)
        assert ref.balance()["reminded_at_ms"] == start + 86_400_000


def test_the_async_variant_awaits_calls():
    async def scenario() -> dict:
        async with AsyncLocalSystem(objects=[Account]) as system:
            ref = system.object("Account", "async")
            assert await ref.deposit(amount=4) == 4
            await ref.set_reminder(delay_ms=1_000)
            system.clock.advance(seconds=1)
            system.restart()
            with pytest.raises(CallError):
                await ref.deposit(amount=0)
            return await ref.balance()

    balance = asyncio.run(scenario())
    assert balance["total"] == 4 and balance["reminded_at_ms"] is not None


def test_a_module_that_is_not_there_fails_the_with_block(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    tempfile.tempdir = None  # read TMPDIR again
    try:
        with pytest.raises(ModuleNotFoundError), LocalSystem(objects="no_such_module_here"):
            pass
    finally:
        tempfile.tempdir = None
    assert list(tmp_path.iterdir()) == []  # nothing left behind


def test_a_system_may_run_again_after_its_with_block_from_a_fresh_start():
    system = LocalSystem(objects=[Account])
    with system:
        system.object("Account", "again").deposit(amount=3)
    system.clock.advance(seconds=1)  # outside the block: fires nothing, fails nothing
    with system:
        assert system.object("Account", "again").balance()["total"] == 0


def test_a_held_objects_wake_up_claims_its_calls_for_its_drain_in_the_wake_listeners_round_trip(monkeypatch):
    from solo.objects.coordination.mailbox import Mailbox

    rounds = {"claim": 0, "claim_many": 0}
    claim, claim_many = Mailbox.claim, Mailbox.claim_many

    def counted(name, method):
        def run(self, *args, **kwargs):
            rounds[name] += 1
            return method(self, *args, **kwargs)

        return run

    monkeypatch.setattr(Mailbox, "claim", counted("claim", claim))
    monkeypatch.setattr(Mailbox, "claim_many", counted("claim_many", claim_many))
    with LocalSystem(objects=[Account]) as system:
        ref = system.object("Account", "woken")
        assert ref.deposit(amount=1) == 1  # activation: the new owner's drain claims
        system.settle()
        before = dict(rounds)

        for total in range(2, 6):
            assert ref.deposit(amount=1) == total  # each call wakes the idle owner

        assert rounds["claim"] == before["claim"]  # no drain claimed: each woke holding its batch
        assert rounds["claim_many"] == before["claim_many"] + 4
