"""The activation sequence, driven step by step on one thread (fakeredis and a SQLite shared database).

Guarantee 3 is an order: a batch is committed and shipped, then what it sent
leaves, then the alarms it changed are announced, and only then are its
replies published. These tests record that order at the collaborators.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import fakeredis
import pytest
import sqlalchemy as sa

from solo import DurableObject, rpc
from solo.objects.calls import Call, Outcome
from solo.objects.coordination.alarm_queue import AlarmQueue
from solo.objects.coordination.keys import Keys
from solo.objects.coordination.leases import Leases, lease_value
from solo.objects.coordination.mailbox import Mailbox, MailboxConfig
from solo.objects.errors import ShippingFailed
from solo.objects.naming import object_id
from solo.objects.registry import registry
from solo.objects.runtime.activation import Activation, Services, Stop
from solo.objects.runtime.time_limit import CallTimer
from solo.objects.settings import Settings
from solo.objects.state.catalog import Catalog
from solo.objects.state.migrate import upgrade
from solo.objects.state.schema import log_table, make_engine
from solo.objects.state.store import StateStore
from solo.objects.state.wal import FRAME_HEADER_BYTES

NAMESPACE = "activation-tests"


class ActivationProbe(DurableObject):
    migrations = ["CREATE TABLE notes (body TEXT)"]

    @rpc
    def note(self, body: str) -> int:
        self.sql.execute("INSERT INTO notes VALUES (?)", (body,))
        return self.sql.execute("SELECT count(*) FROM notes").fetchone()[0]

    @rpc
    def note_send_and_wake(self, body: str, at_ms: int) -> int:
        self.objects.get("ActivationProbe", "elsewhere").send.note(body=body)
        self.storage.set_alarm(at_ms)
        return self.note(body)

    def alarm(self, info) -> None:
        pass


class StartSender(DurableObject):
    """Sends a call and sets an alarm from on_start(): what hydrate releases."""

    migrations = ["CREATE TABLE notes (body TEXT)"]

    def on_start(self) -> None:
        self.objects.get("ActivationProbe", "elsewhere").send.note(body="started")
        self.storage.set_alarm(self.ctx.now_ms() + 5_000)

    @rpc
    def note(self, body: str) -> int:
        self.sql.execute("INSERT INTO notes VALUES (?)", (body,))
        return self.sql.execute("SELECT count(*) FROM notes").fetchone()[0]

    def alarm(self, info) -> None:
        pass


class TwoMigrations(DurableObject):
    migrations = ["CREATE TABLE a (x)", "CREATE TABLE b (x)"]

    @rpc
    def put(self, x: int) -> int:
        self.sql.execute("INSERT INTO b VALUES (?)", (x,))
        return x


class RecordingMailbox(Mailbox):
    def __init__(self, events: list[str], *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.events = events
        self.claims = 0  # claim round trips (complete's claims of the next batch not counted)

    def claim(self, object_id, lease_value, batch_size):
        self.claims += 1
        return super().claim(object_id, lease_value, batch_size)

    def complete(self, object_id, lease_value, calls, outcomes) -> int:
        self.events.append("complete")
        return super().complete(object_id, lease_value, calls, outcomes)

    def complete_and_claim(self, object_id, lease_value, calls, outcomes, batch_size):
        self.events.append("complete")
        return super().complete_and_claim(object_id, lease_value, calls, outcomes, batch_size)


class RecordingAlarmQueue(AlarmQueue):
    def __init__(self, events: list[str], *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.events = events

    def announce(self, object_id, class_name, object_name, due, now_ms) -> None:
        self.events.append("announce " + ",".join(name for name, _ in due))
        super().announce(object_id, class_name, object_name, due, now_ms)


class RecordingTransport:
    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.sent: list[Call] = []

    @property
    def reply_to(self) -> str:
        return "nobody"

    def call(self, call: Call, timeout_s: float) -> Outcome:
        raise AssertionError("no test here waits on another object")

    def send(self, call: Call) -> None:
        self.events.append(f"send {call.method}")
        self.sent.append(call)


class World:
    """The collaborators of an activation, on fakeredis and a SQLite shared database."""

    def __init__(self, tmp_path: Path) -> None:
        self.events: list[str] = []
        self.clock_ms = 1_000_000
        redis = fakeredis.FakeRedis()
        database_url = f"sqlite:///{tmp_path / 'shared.db'}"
        upgrade(database_url)
        self.engine = make_engine(database_url)
        self.keys = Keys(f"t-{uuid.uuid4().hex[:8]}")
        settings = Settings.from_mapping({"namespace": NAMESPACE, "worker_id": "w1", "batch_size": 2})
        self.mailbox = RecordingMailbox(self.events, redis, MailboxConfig(self.keys, 3600, 60_000))
        self.leases = Leases(redis, self.keys, ttl_ms=30_000, activation_grace_ms=60_000)
        self.catalog = Catalog(self.engine)
        self.transport = RecordingTransport(self.events)
        self.services = Services(
            settings=settings,
            mailbox=self.mailbox,
            catalog=self.catalog,
            store=StateStore(self.engine),
            registry=registry(),
            alarm_queue=RecordingAlarmQueue(self.events, redis, self.keys, horizon_ms=3_600_000),
            transport=self.transport,
            data_dir=tmp_path / "objects",
            clock_ms=lambda: self.clock_ms,
            timer=CallTimer(settings.call_time_limit_s),
        )

    def activation(self, name: str, class_name: str = "ActivationProbe") -> Activation:
        oid = object_id(NAMESPACE, class_name, name)
        lease = lease_value("w1", "g1")
        assert self.leases.acquire(oid, lease)
        return Activation(oid, lease, self.services)

    def enqueue(self, activation: Activation, method: str, class_name: str = "ActivationProbe", **args) -> Call:
        name = activation.instance.name if activation.instance else "probe"
        call = Call(uuid.uuid4().hex, activation.object_id, class_name, name, method, args)
        self.mailbox.enqueue(call)
        return call

    def outcome(self, call: Call) -> Outcome | None:
        raw = self.mailbox._redis.hget(self.keys.call(call.call_id), "outcome")  # noqa: SLF001
        return Outcome.from_payload(raw) if raw else None


@pytest.fixture
def world(tmp_path):
    world = World(tmp_path)
    yield world
    world.engine.dispose()


def test_a_batch_ships_then_sends_then_announces_then_publishes(world):
    activation = world.activation("probe")
    call = world.enqueue(activation, "note_send_and_wake", body="hi", at_ms=world.clock_ms + 5_000)

    assert activation.step() == 0

    assert world.outcome(call).result == 1
    assert world.events == ["send note", "announce _alarm", "complete"]
    # Shipped before anything left: one record holds hydrate's commits and the batch's.
    assert world.services.store.head(activation.object_id).seq == 1
    activation.close()


def test_step_reports_what_is_still_queued_and_an_empty_mailbox(world):
    activation = world.activation("probe")
    calls = [world.enqueue(activation, "note", body=str(i)) for i in range(3)]

    assert activation.step() == 1  # batch_size 2: one call left
    assert activation.step() == 0
    assert activation.step() is None
    assert [world.outcome(c).result for c in calls] == [1, 2, 3]
    activation.close()


def test_a_drain_that_goes_on_runs_the_batch_its_complete_claimed_without_a_claim_round_trip(world):
    activation = world.activation("probe")
    calls = [world.enqueue(activation, "note", body=str(i)) for i in range(5)]

    assert activation.step() == 3  # batch_size 2
    assert activation.claimed == calls[2:4]  # claimed by the first batch's complete
    assert activation.step() == 1
    assert activation.step() == 0
    assert activation.claimed == []

    assert world.mailbox.claims == 1
    assert [world.outcome(c).result for c in calls] == [1, 2, 3, 4, 5]  # in order, each once
    activation.close()


def test_a_batch_claimed_by_complete_is_handed_back_when_the_object_is_dropped(world):
    activation = world.activation("probe")
    calls = [world.enqueue(activation, "note", body=str(i)) for i in range(3)]
    assert activation.step() == 1

    activation.hand_back()  # the host drops the object and lives on
    activation.close()

    status = world.mailbox._redis.hget(world.keys.call(calls[2].call_id), "status")  # noqa: SLF001
    assert status == b"queued" and world.mailbox.depth(activation.object_id) == 1


def test_a_worker_killed_after_a_complete_that_claimed_the_next_batch_loses_nothing(world):
    # Given: a worker whose complete claimed the next batch, killed before running it
    killed = world.activation("probe")
    calls = [world.enqueue(killed, "note", body=str(i)) for i in range(4)]
    assert killed.step() == 2
    assert killed.claimed == calls[2:]
    world.mailbox._redis.delete(world.keys.lease(killed.object_id))  # noqa: SLF001  its lease lapsed
    assert killed.instance is not None
    killed.instance.suspend()  # its process is gone, and the file it held open with it

    # When: the next owner takes the object over
    successor_lease = lease_value("w2", "g1")
    assert world.leases.acquire(killed.object_id, successor_lease)
    successor = Activation(killed.object_id, successor_lease, world.services)
    assert successor.step() == 1  # the head claimed alone: its worker died holding it
    assert successor.step() == 0

    # Then: every call ran once, in order, and the dead worker's batch counted one crash each
    assert [world.outcome(c).result for c in calls] == [1, 2, 3, 4]
    crashes = [world.mailbox._redis.hget(world.keys.call(c.call_id), "crashes") for c in calls]  # noqa: SLF001
    assert crashes == [None, None, b"1", b"1"]
    successor.close()


def test_a_batch_for_an_unknown_class_is_answered_and_the_activation_stops(world):
    activation = world.activation("probe")
    call = world.enqueue(activation, "note", class_name="NoSuchClassAnywhere", body="x")

    step = activation.step()

    assert step == Stop("no durable object class named 'NoSuchClassAnywhere'", release="drain")
    assert world.outcome(call).error["code"] == "unknown_class"


def test_a_fenced_activation_stops_and_publishes_nothing(world):
    activation = world.activation("probe")
    world.enqueue(activation, "note", body="first")
    assert activation.step() == 0
    # Another worker takes the object over (a higher epoch) while this one still holds it.
    world.catalog.take_over(activation.object_id, NAMESPACE, "ActivationProbe", "probe", "w2", known_schema=1)
    late = world.enqueue(activation, "note", body="late")
    world.events.clear()

    step = activation.step()

    assert isinstance(step, Stop) and step.release == "drain"
    assert world.events == [] and world.outcome(late) is None  # nothing published, the call stays queued


def test_a_new_objects_start_up_ships_with_its_first_batch_and_records_the_schema_version(world):
    activation = world.activation("starter", "StartSender")
    call = world.enqueue(activation, "note", class_name="StartSender", body="first")

    assert activation.step() == 0

    assert world.outcome(call).result == 1
    assert world.events == ["send note", "announce _alarm", "complete"]  # on_start()'s, after the shipment
    assert world.services.store.head(activation.object_id).seq == 1  # claim, migration, on_start and call
    assert world.catalog.get(activation.object_id).schema_version == 1
    activation.close()


def test_a_start_up_fenced_before_its_first_shipment_releases_nothing(world):
    activation = world.activation("starter", "StartSender")
    call = world.enqueue(activation, "note", class_name="StartSender", body="first")
    take_over = world.catalog.take_over

    def taken_over_at_once(object_id, *args, **kwargs):
        # Another worker mints a higher epoch right after ours, before anything of ours shipped.
        mine = take_over(object_id, *args, **kwargs)
        take_over(object_id, NAMESPACE, "StartSender", "starter", "w2", known_schema=1)
        return mine

    world.catalog.take_over = taken_over_at_once  # type: ignore[method-assign]

    step = activation.step()

    assert isinstance(step, Stop) and step.release == "drain"
    assert world.events == [] and world.outcome(call) is None  # no send, no alarm, no reply: the call stays queued
    assert world.services.store.head(activation.object_id).seq == 0


def test_a_new_objects_first_record_alone_restores_the_owners_file(world):
    # Given a new object whose file began as the per-process template (solo's tables in its WAL)
    activation = world.activation("restored")
    world.enqueue(activation, "note", body="kept")
    assert activation.step() == 0
    path = activation.instance.path
    activation.close()

    # When its state is rebuilt from the shared database: the one record shipped
    image = world.services.store.image_at(activation.object_id, 1)

    # Then it is the owner's file, byte for byte
    assert image == path.read_bytes()
    rebuilt = path.with_name("rebuilt.sqlite")
    rebuilt.write_bytes(image)
    conn = sqlite3.connect(rebuilt)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT body FROM notes").fetchall() == [("kept",)]
    finally:
        conn.close()


def test_a_new_objects_claim_and_migrations_are_one_commit_of_its_first_record(world):
    activation = world.activation("two", "TwoMigrations")
    call = world.enqueue(activation, "put", class_name="TwoMigrations", x=7)

    assert activation.step() == 0

    assert world.outcome(call).result == 7
    with world.engine.connect() as conn:
        frames, page_size = conn.execute(
            sa.select(log_table.c.frames, log_table.c.page_size).where(log_table.c.object_id == activation.object_id)
        ).one()
    frame_bytes = FRAME_HEADER_BYTES + page_size
    commits = [at for at in range(0, len(frames), frame_bytes) if int.from_bytes(frames[at + 4 : at + 8], "big") != 0]
    # The template's (solo's tables), hydrate's one (the claim and both migrations), the batch's
    assert len(commits) == 3
    assert world.catalog.get(activation.object_id).schema_version == 2
    activation.close()


def test_a_start_up_whose_first_shipment_failed_records_no_schema_version(world, monkeypatch):
    activation = world.activation("starter", "StartSender")
    world.enqueue(activation, "note", class_name="StartSender", body="first")

    def unreachable(*args, **kwargs):
        raise OSError("shared database unreachable")

    monkeypatch.setattr(world.services.store, "ship", unreachable)
    with pytest.raises(ShippingFailed):
        activation.step()
    activation.close()

    # The migration ran in the local file only: the catalog keeps the version it had (none).
    assert world.catalog.get(activation.object_id).schema_version == 0
    assert world.events == []
