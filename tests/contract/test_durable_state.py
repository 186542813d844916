"""Shipping object state to the shared database, restoring it, and fencing former owners, on both backends.

The service-free parts (images rebuilt from WAL frames, imported images checked) are in
tests/unit/test_durable_state.py.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from solo.examples.counter import Counter
from solo.objects.calls import Call
from solo.objects.errors import OwnershipLost, SchemaTooNew, StateConflict
from solo.objects.group_commit import GroupCommit
from solo.objects.naming import Address, new_call_id, object_id
from solo.objects.registry import registry
from solo.objects.runtime.instance import ObjectInstance
from solo.objects.state.admin import Replaced, StateAdmin
from solo.objects.state.alarm_index import AlarmIndex
from solo.objects.state.file_snapshots import CHUNK_BYTES
from solo.objects.state.images import check_image
from tests.objects import Alarmed, Bulky, Ledger


def run(instance: ObjectInstance, method: str, **args):
    call = Call(new_call_id(), instance.object_id, instance.cls.__name__, instance.name, method, args)
    (outcome,) = instance.run_batch([call]).outcomes
    return outcome


def live_image(instance: ObjectInstance) -> bytes:
    return instance._conn.serialize()  # noqa: SLF001 - the owner's own view, for comparison


def test_every_commit_is_shipped_and_a_restore_elsewhere_is_byte_identical(activate, store):
    name = uuid.uuid4().hex
    owner = activate(Counter, name)
    for _ in range(5):
        run(owner, "increment")
    head = store.head(owner.object_id)
    assert head.seq == owner.seq > 0

    restored = store.image_at(owner.object_id, head.seq)
    assert restored == live_image(owner)
    check_image(restored, len(Counter.migrations))  # integrity_check passes


def test_a_new_owner_with_an_empty_directory_resumes_from_the_durable_state(activate):
    name = uuid.uuid4().hex
    first = activate(Counter, name, worker="w1")
    assert run(first, "increment", by=7).result == 7
    second = activate(Counter, name, worker="w2")  # empty directory: restored from the shared database
    assert run(second, "increment").result == 8


def test_a_former_owner_cannot_commit_after_a_takeover(activate, store):
    # Given an owner that has shipped some state
    name = uuid.uuid4().hex
    zombie = activate(Counter, name, worker="w1")
    run(zombie, "increment", by=1)
    # When another worker takes the object over and serves a call
    successor = activate(Counter, name, worker="w2")
    assert run(successor, "increment", by=10).result == 11
    head = store.head(successor.object_id).seq
    # Then the former owner's next batch is refused and leaves no trace
    with pytest.raises(OwnershipLost):
        run(zombie, "increment", by=100)
    assert store.head(successor.object_id).seq == head
    assert run(successor, "get").result == 11


def test_a_snapshot_is_taken_when_the_log_outgrows_the_database(activate, engine, store):
    name = uuid.uuid4().hex
    owner = activate(Ledger, name)
    owner.shipper.snapshot_floor_bytes = 0  # a small object: snapshot as soon as the log outgrows it
    for i in range(60):
        run(owner, "append", tag=f"entry-{i}")
    head = store.head(owner.object_id)
    assert head.snapshot_seq > 0
    assert store.image_at(owner.object_id, head.seq) == live_image(owner)


def test_a_small_object_takes_no_snapshot_until_its_log_reaches_the_floor(activate, store):
    owner = activate(Counter, uuid.uuid4().hex)
    for _ in range(40):
        run(owner, "increment")
    head = store.head(owner.object_id)
    assert head.snapshot_seq == 0 and 0 < head.log_bytes < owner.shipper.snapshot_floor_bytes
    assert store.image_at(owner.object_id, head.seq) == live_image(owner)


def test_a_one_row_update_ships_a_few_pages_whatever_the_database_size(activate, store):
    owner = activate(Bulky, uuid.uuid4().hex)
    run(owner, "grow", kib=2048)
    assert owner.state_bytes() + Path(f"{owner.path}-wal").stat().st_size > 2_000_000
    before = store.head(owner.object_id).seq
    assert run(owner, "touch").result == 1
    assert store.head(owner.object_id).seq == before + 1
    # the row's page plus the exactly-once record (table and index): 3 frames of 4 KiB + 24 bytes
    assert store.shipped_bytes(owner.object_id, before + 1) <= 16 * 1024


def test_an_earlier_sequence_shows_the_earlier_state(activate, store):
    name = uuid.uuid4().hex
    owner = activate(Counter, name)
    run(owner, "increment", by=1)
    earlier = store.head(owner.object_id).seq
    run(owner, "increment", by=1)
    conn = sqlite3.connect(":memory:")
    image = bytearray(store.image_at(owner.object_id, earlier))
    image[18:20] = b"\x01\x01"  # deserialize() wants a rollback-journal header
    conn.deserialize(bytes(image))
    assert conn.execute("SELECT value FROM counter").fetchone()[0] == 1


def test_replacing_the_state_fences_the_owner_and_the_next_owner_sees_the_new_state(activate, store):
    source = activate(Counter, uuid.uuid4().hex)
    run(source, "increment", by=42)
    image = store.image_at(source.object_id, store.head(source.object_id).seq)

    name = uuid.uuid4().hex
    owner = activate(Counter, name, worker="w1")
    run(owner, "increment", by=1)
    store.replace(owner.object_id, "test", "Counter", name, image)
    with pytest.raises(OwnershipLost):
        run(owner, "increment")
    assert run(activate(Counter, name, worker="w2"), "get").result == 42


def test_a_state_replaced_from_a_file_is_stored_byte_for_byte_in_chunks(activate, store, tmp_path):
    # Given: a file of a few megabytes that does not end on a chunk (an import's upload)
    source = activate(Bulky, uuid.uuid4().hex)
    run(source, "grow", kib=3 * 1024 + 7)
    run(source, "touch")
    upload = tmp_path / "upload"
    upload.write_bytes(store.image_at(source.object_id, store.head(source.object_id).seq))
    assert upload.stat().st_size % CHUNK_BYTES

    # When: it replaces the state of an object that has an owner
    name = uuid.uuid4().hex
    owner = activate(Bulky, name, worker="w1")
    run(owner, "touch")
    seq = store.replace(owner.object_id, "test", "Bulky", name, upload)

    # Then: the snapshot is the file, the owner is fenced, and the next owner reads the file's state
    assert store.image_at(owner.object_id, seq) == upload.read_bytes()
    with pytest.raises(OwnershipLost):
        run(owner, "touch")
    assert run(activate(Bulky, name, worker="w2"), "touch").result == 2


def test_an_import_is_stored_from_its_file_with_its_alarms_indexed_in_the_same_transaction(
    activate, store, engine, tmp_path
):
    # Given: the file of an object with an alarm and a schedule, uploaded
    source = activate(Alarmed, uuid.uuid4().hex)
    run(source, "set_alarm", at_ms=2_000_000_000_000)
    run(source, "every", name="minutely", seconds=60)
    upload = tmp_path / "upload"
    upload.write_bytes(store.image_at(source.object_id, store.head(source.object_id).seq))

    # When: it is imported into another object
    name = uuid.uuid4().hex
    address = Address("Alarmed", name, object_id("test", "Alarmed", name))
    replaced = StateAdmin(store, "test").import_file(address, upload, registry())

    # Then: the snapshot is the checked file, and the shared index has its alarms
    assert store.image_at(address.object_id, replaced.seq) == upload.read_bytes()
    assert sorted(alarm for alarm, _ in replaced.alarms) == ["_alarm", "minutely"]
    indexed = AlarmIndex(engine, "test").listing(object_ids=[address.object_id])
    assert sorted(row["name"] for row in indexed) == ["_alarm", "minutely"]


def test_deleting_an_object_fences_its_owner_and_the_next_activation_starts_empty(activate, store, catalog):
    name = uuid.uuid4().hex
    owner = activate(Counter, name, worker="w1")
    run(owner, "increment", by=5)
    assert store.delete(owner.object_id)
    assert catalog.get(owner.object_id) is None
    with pytest.raises(OwnershipLost):
        run(owner, "increment")
    fresh = activate(Counter, name, worker="w2")
    assert run(fresh, "increment").result == 1
    assert fresh.epoch > owner.epoch


def test_a_cleanly_closed_file_is_reused_only_at_the_durable_head(activate, store, monkeypatch):
    name = uuid.uuid4().hex
    first = activate(Counter, name, worker="w1")
    run(first, "increment")
    first.close()

    # Reused: nothing is read from the shared database
    def no_restore(*_args):
        raise AssertionError("restored although the local file was current")

    monkeypatch.setattr(store, "image_at", no_restore)
    again = activate(Counter, name, worker="w1")
    assert run(again, "increment").result == 2
    again.close()
    monkeypatch.undo()

    # Another owner moves the head: the old local file is not reused
    other = activate(Counter, name, worker="w2")
    run(other, "increment")
    other.close()
    assert run(activate(Counter, name, worker="w1"), "get").result == 3


def test_a_new_object_starts_from_an_empty_wal_file_and_its_first_shipment_holds_all_of_it(activate, store):
    name = uuid.uuid4().hex
    owner = activate(Counter, name)
    assert owner.seq == 1  # claim, migrations and on_start(): one record
    restored = store.image_at(owner.object_id, 1)
    assert restored == live_image(owner)
    check_image(restored, len(Counter.migrations))
    assert run(owner, "increment").result == 1


def test_the_hydrate_shipment_records_the_schema_version_after_migrations(catalog, activate):
    name = uuid.uuid4().hex
    owner = activate(Counter, name)
    info = catalog.get(owner.object_id)
    assert info is not None and info.schema_version == len(Counter.migrations) == owner.schema_version()
    with pytest.raises(SchemaTooNew):  # older code: refused from the first activation on
        catalog.take_over(owner.object_id, "test", "Counter", name, "old-worker", known_schema=0)


def test_a_takeover_records_its_activation_and_reads_the_log_bytes(catalog, activate, store):
    name = uuid.uuid4().hex
    first = activate(Counter, name, worker="w1")
    run(first, "increment")
    takeover = catalog.take_over(first.object_id, "test", "Counter", name, "w2", known_schema=len(Counter.migrations))
    assert takeover.epoch == first.epoch + 1
    assert takeover.log_bytes == store.head(first.object_id).log_bytes > 0
    assert [(a.epoch, a.worker_id) for a in catalog.history(first.object_id)] == [
        (first.epoch, "w1"),
        (takeover.epoch, "w2"),
    ]


def test_old_code_is_refused_before_it_takes_an_epoch(catalog, activate):
    name = uuid.uuid4().hex
    owner = activate(Counter, name)
    catalog.record_stop(owner.object_id, owner.epoch, state_bytes=0, schema_version=2)  # newer code stopped it
    with pytest.raises(SchemaTooNew):
        catalog.take_over(owner.object_id, "test", "Counter", name, "old-worker", known_schema=1)
    assert [a.epoch for a in catalog.history(owner.object_id)] == [owner.epoch]


def test_of_two_imports_into_one_new_name_at_once_one_wins_and_the_other_is_told_of_the_conflict(
    activate, store, engine, tmp_path
):
    # Given: two files of different states, and a name no object has yet
    uploads = []
    for by in (5, 7):
        source = activate(Counter, uuid.uuid4().hex)
        run(source, "increment", by=by)
        upload = tmp_path / f"upload-{by}"
        upload.write_bytes(store.image_at(source.object_id, store.head(source.object_id).seq))
        uploads.append(upload)
    name = uuid.uuid4().hex
    address = Address("Counter", name, object_id("test", "Counter", name))
    admin = StateAdmin(store, "test")

    # When: the second import looks for the object after the first made its row, before the first
    # commits (the first waits in its transaction until the second's insert is on its way)
    second_inserting = threading.Event()
    results: dict[str, object] = {}

    def import_(which: str, upload: Path) -> None:
        try:
            results[which] = admin.import_file(address, upload, registry())
        except Exception as exc:
            results[which] = exc

    second = threading.Thread(target=import_, args=("second", uploads[1]))

    def makes_the_row(statement: str) -> bool:
        return statement.lstrip().upper().startswith("INSERT INTO OBJECTS ")

    def before(conn, cursor, statement, parameters, context, executemany):
        if threading.current_thread() is second and makes_the_row(statement):
            second_inserting.set()

    def after(conn, cursor, statement, parameters, context, executemany):
        if threading.current_thread() is threading.main_thread() and makes_the_row(statement) and not second.ident:
            second.start()
            assert second_inserting.wait(30)

    sa.event.listen(engine, "before_cursor_execute", before)
    sa.event.listen(engine, "after_cursor_execute", after)
    try:
        import_("first", uploads[0])
        second.join(60)
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)
        sa.event.remove(engine, "after_cursor_execute", after)

    # Then: the first is the object's state; the second changed nothing and says why
    assert isinstance(results["first"], Replaced), results
    assert isinstance(results["second"], StateConflict), results
    assert results["second"].code == "conflict"
    assert store.head(address.object_id).seq == results["first"].seq == 1
    assert store.image_at(address.object_id, 1) == uploads[0].read_bytes()
    # and sent again, it replaces the winner's state like any import
    assert admin.import_file(address, uploads[1], registry()).seq == 2
    assert store.image_at(address.object_id, 2) == uploads[1].read_bytes()


def test_in_a_group_shipment_a_fenced_member_is_refused_alone(activate, store, engine):
    # Given three owners on one store, one of which has been taken over by another worker
    if engine.dialect.name != "postgresql":
        return  # shipments are grouped on Postgres only; SQLite ships each in its own transaction
    names = [uuid.uuid4().hex for _ in range(3)]
    first, zombie, last = (activate(Counter, n, worker="w1") for n in names)
    successor = activate(Counter, names[1], worker="w2")
    assert run(successor, "increment", by=10).result == 10
    taken_head = store.head(zombie.object_id).seq
    # ... and a fourth whose shipment holds until all three wait for the next round trip
    holder = activate(Counter, uuid.uuid4().hex, worker="w1")
    gate, release = threading.Event(), threading.Event()
    ship_together = store.ship_together

    def held(shipments):
        if not gate.is_set():
            gate.set()
            release.wait(10)
        return ship_together(shipments)

    store.shipments = GroupCommit(held)
    outcomes: dict[str, object] = {}

    def call(key: str, instance: ObjectInstance) -> None:
        try:
            outcomes[key] = run(instance, "increment", by=1).result
        except OwnershipLost as exc:
            outcomes[key] = exc

    threads = [threading.Thread(target=call, args=("holder", holder))]
    threads[0].start()
    assert gate.wait(10)
    threads += [threading.Thread(target=call, args=(k, i)) for k, i in (("a", first), ("z", zombie), ("b", last))]
    for t in threads[1:]:
        t.start()
    while store.shipments.waiting < 3:
        threading.Event().wait(0.001)
    # When they ship together in one statement
    release.set()
    for t in threads:
        t.join(10)
    # Then only the fenced one is refused; the others' records are durable
    assert (store.shipments.groups, store.shipments.items) == (2, 4)
    assert isinstance(outcomes.pop("z"), OwnershipLost)
    assert outcomes == {"holder": 1, "a": 1, "b": 1}
    assert store.head(zombie.object_id).seq == taken_head
    for owner in (first, last):
        assert store.head(owner.object_id).seq == owner.seq
        assert store.image_at(owner.object_id, owner.seq) == live_image(owner)
    assert run(successor, "get").result == 10
