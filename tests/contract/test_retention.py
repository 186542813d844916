"""Retention and compaction, on both backends: storage stays bounded and no state is ever lost to it.

The compactor is run with a window that ends now (`cutoff`), so that every commit made so
far lies before it; the API's window is moved the same way by its clock. Objects are then
hydrated by a second system with an empty data directory, so their state can only come
from what the compactor kept in the shared database.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
import sqlalchemy as sa

from solo.examples.counter import Counter
from solo.objects.errors import OwnershipLost
from solo.objects.naming import object_id
from solo.objects.state.compactor import Compactor
from solo.objects.state.epoch_floor import floor
from solo.objects.state.schema import activations_table, log_table, objects_table, snapshots_table, utcnow
from solo.testing.inprocess import InProcessSystem
from tests.contract.test_durable_state import run

DAY = dt.timedelta(days=1)


def unique() -> str:
    return uuid.uuid4().hex


def url(class_name: str, name: str, action: str | None = None) -> str:
    base = f"/v1/objects/{class_name}/{name}"
    return f"{base}/{action}" if action else base


def call(http, class_name: str, name: str, method: str, **kwargs):
    response = http.post(url(class_name, name, method), json=kwargs)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def seq_of(http, class_name: str, name: str) -> int:
    response = http.get(url(class_name, name))
    assert response.status_code == 200, response.text
    return response.json()["seq"]


def history(engine, oid: str) -> tuple[list[int], list[int]]:
    """(snapshot sequences, log sequences) kept for an object."""
    with engine.connect() as conn:
        snapshots = conn.execute(
            sa.select(snapshots_table.c.seq).where(snapshots_table.c.object_id == oid).order_by("seq")
        ).scalars()
        records = conn.execute(sa.select(log_table.c.seq).where(log_table.c.object_id == oid).order_by("seq"))
        return [int(s) for s in snapshots], [int(s) for s in records.scalars()]


def age(engine, oid: str, up_to_seq: int, by: dt.timedelta) -> None:
    """Make an object's commits up to a sequence look `by` older than they are."""
    with engine.begin() as conn:
        for table in (log_table, snapshots_table):
            rows = conn.execute(
                sa.select(table.c.seq, table.c.created_at).where(table.c.object_id == oid, table.c.seq <= up_to_seq)
            ).all()
            for seq, created_at in rows:
                conn.execute(
                    table.update()
                    .where(table.c.object_id == oid, table.c.seq == seq)
                    .values(created_at=created_at - by)
                )


def catalog_row(engine, oid: str):
    with engine.connect() as conn:
        return conn.execute(sa.select(objects_table).where(objects_table.c.id == oid)).mappings().first()


@pytest.fixture
def fresh_system(settings, redis_client, async_redis_client, tmp_path):
    """fresh_system(): another system with an empty data directory (start it after stopping the first)."""

    def make() -> InProcessSystem:
        other = settings.with_changes(data_dir=str(tmp_path / f"fresh-{unique()}"), worker_id=f"fresh-{unique()}")
        return InProcessSystem(other, redis_client, async_redis_client)

    return make


# -- no state is lost to compaction ----------------------------------------------------------


def test_after_compaction_every_object_hydrates_to_its_latest_state(system, fresh_system, settings):
    """Many objects with several commits each, of every kind of history; compacted with a window that
    ends now; then every object is hydrated from the shared database alone and checked."""
    counters = {unique(): n for n in range(1, 6) for _ in range(12)}  # 60 objects, 1 to 5 commits each
    bulky = [unique() for _ in range(3)]  # large: snapshots of their own, then a few small commits
    restored, deleted, revived = unique(), unique(), unique()
    with system.running() as http:
        for name, n in counters.items():
            for _ in range(n):
                call(http, "Counter", name, "increment")
        for name in bulky:
            call(http, "Bulky", name, "grow", kib=1100)
            for _ in range(3):
                call(http, "Bulky", name, "touch")
        call(http, "Counter", restored, "increment", by=10)
        first = seq_of(http, "Counter", restored)
        call(http, "Counter", restored, "increment", by=5)
        response = http.post(url("Counter", restored, "restore"), json={"seq": first})
        assert response.status_code == 200, response.text
        restore_seq = response.json()["seq"]
        call(http, "Counter", restored, "increment", by=1)
        for name in (deleted, revived):
            call(http, "Counter", name, "increment", by=7)
            assert http.delete(url("Counter", name)).status_code == 200
        call(http, "Counter", revived, "increment", by=3)

    report = system.compactor.run(cutoff=utcnow() + dt.timedelta(seconds=1))
    assert report.complete and report.folded >= len(counters)
    assert report.tombstones == 1  # `deleted`; `revived` is an object again
    assert system.compactor.run(cutoff=report.cutoff).log_records == 0  # nothing left to do

    engine = system.engine
    ns = settings.namespace
    for name in [*counters, revived]:  # small and idle: one snapshot of the latest state, no log
        oid = object_id(ns, "Counter", name)
        assert history(engine, oid) == ([catalog_row(engine, oid)["head_seq"]], []), name
    # A few small commits after the restore's snapshot, smaller than an image: not folded.
    oid = object_id(ns, "Counter", restored)
    head = catalog_row(engine, oid)["head_seq"]
    assert history(engine, oid) == ([restore_seq], list(range(restore_seq + 1, head + 1)))
    for name in bulky:  # the log since the snapshot is smaller than the image: kept, and nothing older
        snapshots, records = history(engine, object_id(ns, "Bulky", name))
        assert len(snapshots) == 1 and records == list(range(snapshots[0] + 1, snapshots[0] + 4))
    assert catalog_row(engine, object_id(ns, "Counter", deleted)) is None
    assert history(engine, object_id(ns, "Counter", deleted)) == ([], [])

    second = fresh_system()
    with second.running() as http:
        for name, n in counters.items():
            assert call(http, "Counter", name, "get") == n, name
        for name in bulky:
            assert call(http, "Bulky", name, "touch") == 4
        assert call(http, "Counter", restored, "get") == 11
        assert call(http, "Counter", revived, "get") == 3
        assert call(http, "Counter", deleted, "get") == 0  # made anew, empty


def test_an_owner_keeps_working_while_the_compactor_runs(system, fresh_system, settings):
    """Owners ship (and snapshot) while passes with a window ending now fold and prune their history:
    no shipment is refused, nobody is fenced, and the state hydrates elsewhere afterwards."""
    names = [unique() for _ in range(4)]
    rounds = 30
    results: dict[str, list[int]] = {name: [] for name in names}
    errors: list[BaseException] = []
    with system.running() as http:
        for name in names:
            call(http, "Counter", name, "increment")

        def load() -> None:
            try:
                for _ in range(rounds):
                    for name in names:
                        results[name].append(call(http, "Counter", name, "increment"))
            except BaseException as exc:  # reported below
                errors.append(exc)

        loader = threading.Thread(target=load)
        loader.start()
        folded = passes = 0
        while loader.is_alive() or passes == 0:
            report = system.compactor.run(cutoff=utcnow())
            folded += report.folded
            passes += 1
        loader.join()
        assert not errors, errors
        for name in names:
            assert results[name] == list(range(2, rounds + 2))  # every call answered, in order, none twice
            oid = object_id(settings.namespace, "Counter", name)
            assert len(system.catalog.history(oid)) == 1  # one activation: the compactor fenced nobody
        assert folded > 0
        system.compactor.run(cutoff=utcnow())
        for name in names:
            assert call(http, "Counter", name, "increment") == rounds + 2
    second = fresh_system()
    with second.running() as http:
        for name in names:
            assert call(http, "Counter", name, "get") == rounds + 2


def test_a_fold_replaces_the_log_with_the_same_state(activate, store, engine):
    """The snapshot a fold writes is byte for byte the state the log rebuilt, and the log is gone."""
    owner = activate(Counter, unique())
    for _ in range(6):
        run(owner, "increment")
    head = store.head(owner.object_id).seq
    before = store.image_at(owner.object_id, head)
    Compactor(engine, "test", 7 * 86400).run(cutoff=utcnow())
    assert store.image_at(owner.object_id, head) == before
    assert history(engine, owner.object_id) == ([head], [])


# -- restore inside the window, and 422 before it ---------------------------------------------


def move_api_clock(system, by: dt.timedelta) -> None:
    system.app.state.api.operations.admin.clock = lambda: utcnow() + by


def test_restore_reaches_back_through_the_window_and_no_further(system, http, settings):
    name = unique()
    seqs = []
    for _ in range(6):
        call(http, "Counter", name, "increment")
        seqs.append(seq_of(http, "Counter", name))
    age(system.engine, object_id(settings.namespace, "Counter", name), seqs[2], 8 * DAY)
    system.compactor.run()  # the default window: seven days

    for seq in (seqs[2], seqs[5]):  # the state at the window's start, and every one after it
        response = http.post(url("Counter", name, "restore"), json={"seq": seq})
        assert response.status_code == 200, response.text
        assert call(http, "Counter", name, "get") == seqs.index(seq) + 1
    for point in ({"seq": seqs[1]}, {"seq": 1}, {"at": (utcnow() - 7 * DAY - dt.timedelta(hours=1)).isoformat()}):
        response = http.post(url("Counter", name, "restore"), json=point)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "out_of_retention"
        assert f"sequences {seqs[2]} to " in error["message"] and "the oldest committed at" in error["message"]
    # A time inside the window whose last commit is older: the state at the window's start.
    at = (utcnow() - 7 * DAY + dt.timedelta(hours=1)).isoformat()
    response = http.post(url("Counter", name, "restore"), json={"at": at})
    assert response.status_code == 200, response.text
    assert response.json()["restored_from"] == seqs[2]


def test_the_window_is_enforced_whether_or_not_the_compactor_ran(system, http):
    name = unique()
    for _ in range(3):
        call(http, "Counter", name, "increment")
    head = seq_of(http, "Counter", name)
    move_api_clock(system, 8 * DAY)  # every commit is now older than the window
    response = http.post(url("Counter", name, "restore"), json={"seq": 1})
    assert response.status_code == 422 and response.json()["error"]["code"] == "out_of_retention"
    assert f"sequences {head} to {head} can be restored" in response.json()["error"]["message"]
    assert http.post(url("Counter", name, "restore"), json={"seq": head}).status_code == 200


# -- tombstones ----------------------------------------------------------------------------


def test_a_pruned_tombstone_still_fences_its_former_owner(activate, store, engine, catalog):
    name = unique()
    zombie = activate(Counter, name, worker="w1")
    for _ in range(3):
        run(zombie, "increment")
    zombie_seq = zombie.seq
    assert store.delete(zombie.object_id)
    Compactor(engine, "test", 7 * 86400).run(cutoff=utcnow() - DAY)
    assert catalog_row(engine, zombie.object_id) is not None  # inside the window: the tombstone stays

    report = Compactor(engine, "test", 7 * 86400).run(cutoff=utcnow())
    assert report.tombstones >= 1 and catalog_row(engine, zombie.object_id) is None
    with engine.connect() as conn:
        assert conn.execute(sa.select(floor())).scalar() >= zombie.epoch + 1
        assert (
            conn.execute(sa.select(sa.func.count()).where(activations_table.c.object_id == zombie.object_id)).scalar()
            == 0
        )

    # The object made anew counts its sequences from the start, but its epochs are above every former one.
    fresh = activate(Counter, name, worker="w2")
    assert fresh.epoch > zombie.epoch
    while fresh.seq < zombie_seq:
        run(fresh, "increment")
    assert fresh.seq == zombie_seq
    with pytest.raises(OwnershipLost):
        run(zombie, "increment")


def test_a_local_file_of_a_pruned_incarnation_is_never_reused(activate, store, engine):
    name = unique()
    old = activate(Counter, name, worker="w1")
    for _ in range(4):
        run(old, "increment", by=100)
    old_seq = old.seq
    old.close()  # marked clean at old_seq
    store.delete(old.object_id)
    Compactor(engine, "test", 7 * 86400).run(cutoff=utcnow())

    new = activate(Counter, name, worker="w2")
    value = 0
    while new.seq < old_seq:
        value = run(new, "increment").result
    assert new.seq == store.head(new.object_id).seq == old_seq
    new.close()
    # The head is the sequence w1's clean file was marked at, in another incarnation: w1 rebuilds
    # from the shared database instead of reusing its file.
    again = activate(Counter, name, worker="w1")
    assert run(again, "get").result == value < 400


def test_a_new_row_lifts_itself_above_a_floor_raised_during_its_insert(catalog, engine):
    from solo.objects.state.epoch_floor import above_floor, raise_floor

    oid = object_id("test", "Counter", unique())
    with engine.begin() as conn:
        raise_floor(conn, 1)
    takeover = catalog.take_over(oid, "test", "Counter", "x", "w1", known_schema=2)
    assert takeover.epoch >= 2
    with engine.begin() as conn:  # as if a prune had raised it while the insert ran
        raise_floor(conn, takeover.epoch + 10)
        assert above_floor(conn, oid) == takeover.epoch + 11
        assert above_floor(conn, oid) == takeover.epoch + 11  # already above: unchanged


# -- activation records, the command and the scheduler -----------------------------------------------


def test_activation_records_before_the_window_go_except_the_latest(activate, engine, catalog):
    name = unique()
    for worker in ("w1", "w2", "w3"):
        activate(Counter, name, worker=worker).close()
    oid = object_id("test", "Counter", name)
    assert len(catalog.history(oid)) == 3
    Compactor(engine, "test", 7 * 86400).run(cutoff=utcnow())
    assert [a.worker_id for a in catalog.history(oid)] == ["w3"]


def test_solo_compact_prunes_with_the_environment_s_window(http, system, settings, monkeypatch, capsys):
    import json

    from solo.cli.main import main as solo

    name = unique()
    for _ in range(3):
        call(http, "Counter", name, "increment")
    oid = object_id(settings.namespace, "Counter", name)
    age(system.engine, oid, seq_of(http, "Counter", name), 2 * DAY)
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SOLO_NAMESPACE", settings.namespace)
    monkeypatch.setenv("SOLO_RETENTION_S", str(86400))
    assert solo(["compact"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["complete"] and report["folded"] >= 1 and report["log_records"] >= 3
    assert history(system.engine, oid)[1] == []
    assert call(http, "Counter", name, "get") == 3


def test_the_leading_scheduler_starts_a_pass_once_per_interval(system, http):
    scheduler = system.scheduler
    assert scheduler.lead()
    assert scheduler.compaction_due()
    scheduler.start_compaction()
    scheduler._compaction.join()  # noqa: SLF001 - the pass's thread
    # The pass is counted, with its time and its thread's CPU, on the scheduler's metrics.
    registry = scheduler.metrics.registry
    assert registry.get_sample_value("solo_compaction_passes_total") == 1
    # Both are counted; no comparison between them: wall and thread CPU come from different
    # clocks, and a short pass's CPU can read a few microseconds above its wall time.
    assert registry.get_sample_value("solo_compaction_cpu_seconds_total") > 0
    assert registry.get_sample_value("solo_compaction_seconds_total") > 0
    scheduler._next_compaction_look_ms = 0  # noqa: SLF001 - look again at once
    assert not scheduler.compaction_due()  # another started within the interval (the Redis key)
