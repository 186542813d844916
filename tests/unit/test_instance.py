"""ObjectInstance, driven directly: migrations, on_start, batches, exactly-once, fencing, the SQL guard."""

import errno
import logging
import sqlite3
import uuid
from pathlib import Path

import pytest

from solo import DurableObject, UserError, rpc
from solo.examples.counter import Counter
from solo.objects.calls import Call, Outcome
from solo.objects.errors import DiskFull, OwnershipLost, SchemaTooNew, StartFailed
from solo.objects.naming import new_call_id, object_id
from solo.objects.runtime.connection import FileInUse, out_of_space, reading_copy
from solo.objects.runtime.instance import ObjectInstance, recorded_outcomes
from solo.objects.sql import SqlHandle
from tests.objects import Bulky, Fragile, Ledger


def define(prefix: str, **members) -> type[DurableObject]:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    return type(name, (DurableObject,), {"__module__": __name__, "__qualname__": name, **members})


@pytest.fixture
def open_instance(tmp_path):
    """open_instance(cls, epoch=1, like=None): a hydrated instance on a fresh file, or on `like`'s file."""
    made: list[ObjectInstance] = []

    def open_(
        cls, *, epoch: int = 1, like: ObjectInstance | None = None, hydrate: bool = True, debug: bool = False
    ) -> ObjectInstance:
        name = like.name if like else uuid.uuid4().hex
        instance = ObjectInstance(
            cls,
            object_id=like.object_id if like else object_id("test", cls.__name__, name),
            name=name,
            path=like.path if like else tmp_path / f"{name}.sqlite",
            epoch=epoch,
            debug=debug,
        )
        made.append(instance)
        if hydrate:
            instance.hydrate()
        return instance

    yield open_
    for instance in made:
        instance.close()


def call(instance: ObjectInstance, method: str, call_id: str | None = None, **args) -> Call:
    return Call(
        call_id=call_id or new_call_id(),
        object_id=instance.object_id,
        class_name=instance.cls.__name__,
        object_name=instance.name,
        method=method,
        args=args,
    )


def run(instance: ObjectInstance, method: str, **args) -> Outcome:
    (outcome,) = instance.run_batch([call(instance, method, **args)]).outcomes
    return outcome


def peek(path: Path, sql: str, params=()) -> list[tuple]:
    """Read a copy of the object's file (a second connection to the file itself is refused)."""
    with reading_copy(path) as conn:
        return conn.execute(sql, params).fetchall()


def meta(path: Path, key: str) -> int | None:
    rows = peek(path, "SELECT value FROM _solo_meta WHERE key = ?", (key,))
    return rows[0][0] if rows else None


def tables(path: Path) -> set[str]:
    return {r[0] for r in peek(path, "SELECT name FROM sqlite_master WHERE type = 'table'")}


# -- migrations and on_start -------------------------------------------------


def test_migrations_are_applied_once_each_in_order_and_tracked(open_instance):
    applied: list[str] = []
    cls = define(
        "Migrated",
        migrations=[
            lambda sql: applied.append("first"),
            "CREATE TABLE items (n INTEGER)",
            lambda sql: applied.append("third"),
            "INSERT INTO items VALUES (1)",  # would duplicate the row if re-run
        ],
        count=rpc(lambda self: self.sql.execute("SELECT count(*) FROM items").fetchone()[0]),
    )
    first = open_instance(cls)
    assert applied == ["first", "third"]
    assert first.schema_version() == 4
    assert meta(first.path, "schema_version") == 4
    first.close()

    again = open_instance(cls, epoch=2, like=first)
    assert applied == ["first", "third"]
    assert again.schema_version() == 4
    assert run(again, "count").result == 1


def test_counter_keeps_its_value_across_a_rehydrate_without_rerunning_its_insert_migration(open_instance):
    first = open_instance(Counter)
    assert run(first, "increment", by=5).result == 5
    first.close()
    again = open_instance(Counter, epoch=2, like=first)
    assert run(again, "get").result == 5
    assert run(again, "increment").result == 6


def test_a_new_migration_added_to_a_class_applies_only_the_new_one(open_instance):
    log: list[str] = []
    base = [lambda sql: log.append("m1"), "CREATE TABLE t (n INTEGER)", "INSERT INTO t VALUES (1)"]
    version_one = define("Evolving", migrations=list(base))
    version_two = define(
        "Evolving",
        migrations=[*base, lambda sql: log.append("m4"), "INSERT INTO t VALUES (2)"],
        total=rpc(lambda self: self.sql.execute("SELECT sum(n) FROM t").fetchone()[0]),
    )
    first = open_instance(version_one)
    assert log == ["m1"]
    first.close()

    upgraded = open_instance(version_two, epoch=2, like=first)
    assert log == ["m1", "m4"]
    assert upgraded.schema_version() == 5
    assert run(upgraded, "total").result == 3


def test_a_multi_statement_migration_string_runs_every_statement(open_instance):
    migration = """
        CREATE TABLE copies (x TEXT); CREATE TABLE notes (x TEXT NOT NULL); CREATE INDEX notes_x ON notes (x);
        -- a comment; with a semicolon in it
        INSERT INTO notes VALUES ('semi;colon');   /* another; comment */
        CREATE TRIGGER notes_copy AFTER INSERT ON notes BEGIN
            INSERT INTO copies VALUES (new.x);
        END;
        INSERT INTO notes VALUES ('two')
    """

    def add(self, x: str) -> list:
        self.sql.execute("INSERT INTO notes VALUES (?)", (x,))
        return [r[0] for r in self.sql.execute("SELECT x FROM copies ORDER BY rowid")]

    cls = define("MultiStatement", migrations=[migration], add=rpc(add))
    instance = open_instance(cls)

    assert instance.schema_version() == 1
    assert peek(instance.path, "SELECT x FROM notes ORDER BY rowid") == [("semi;colon",), ("two",)]
    assert peek(instance.path, "SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'notes_x'")
    outcome = run(instance, "add", x="three")
    assert outcome.ok, outcome.error
    assert outcome.result == ["two", "three"]  # the trigger exists and was created after the first insert


def test_a_callable_migration_receives_the_sql_handle(open_instance):
    received = []

    def migration(handle):
        received.append(handle)
        handle.execute("CREATE TABLE made_by_callable (n INTEGER)")
        handle.executemany("INSERT INTO made_by_callable VALUES (?)", [(1,), (2,)])

    instance = open_instance(define("CallableMigration", migrations=[migration]))
    assert len(received) == 1 and isinstance(received[0], SqlHandle)
    assert peek(instance.path, "SELECT n FROM made_by_callable ORDER BY n") == [(1,), (2,)]


def test_a_file_with_more_migrations_than_the_class_knows_raises_schema_too_new(open_instance):
    newer = define("Schema", migrations=["CREATE TABLE a (x)", "CREATE TABLE b (x)"])
    older = define("Schema", migrations=["CREATE TABLE a (x)"])
    first = open_instance(newer)
    first.close()

    stale = open_instance(older, epoch=2, like=first, hydrate=False)
    with pytest.raises(SchemaTooNew) as caught:
        stale.hydrate()
    assert "schema version 2" in str(caught.value) and "knows 1 migrations" in str(caught.value)
    assert not stale.is_open
    assert meta(first.path, "schema_version") == 2
    with pytest.raises(RuntimeError):
        stale.run_batch([call(stale, "anything")])


def test_a_failing_migration_raises_start_failed_and_leaves_no_part_of_it_applied(open_instance):
    broken = define(
        "BadMigration",
        migrations=["CREATE TABLE a (x)", "CREATE TABLE b (x);\nINSERT INTO no_such_table VALUES (1);"],
    )
    instance = open_instance(broken, hydrate=False)
    with pytest.raises(StartFailed) as caught:
        instance.hydrate()
    assert "migration 2 failed" in str(caught.value)
    assert not instance.is_open
    assert "a" in tables(instance.path) and "b" not in tables(instance.path)
    assert meta(instance.path, "schema_version") == 1

    fixed = define("BadMigration", migrations=["CREATE TABLE a (x)", "CREATE TABLE b (x);\nINSERT INTO b VALUES (1);"])
    repaired = open_instance(fixed, epoch=2, like=instance)
    assert repaired.schema_version() == 2
    assert peek(instance.path, "SELECT x FROM b") == [(1,)]


def test_a_failing_callable_migration_rolls_back_what_it_did(open_instance):
    def migration(handle):
        handle.execute("CREATE TABLE half (x)")
        raise RuntimeError("midway")

    instance = open_instance(define("BadCallable", migrations=[migration]), hydrate=False)
    with pytest.raises(StartFailed) as caught:
        instance.hydrate()
    assert "migration 1 failed: RuntimeError" in str(caught.value) and "midway" not in str(caught.value)
    assert "half" not in tables(instance.path)
    assert meta(instance.path, "schema_version") is None


def test_a_migration_cannot_commit_part_of_itself(open_instance):
    sneaky = define("CommittingMigration", migrations=["CREATE TABLE a (x);\nCOMMIT;\nCREATE TABLE a (x);"])
    instance = open_instance(sneaky, hydrate=False)
    with pytest.raises(StartFailed):
        instance.hydrate()
    assert "a" not in tables(instance.path)
    assert not meta(instance.path, "schema_version")

    fixed = define("CommittingMigration", migrations=["CREATE TABLE a (x);"])
    assert open_instance(fixed, epoch=2, like=instance).schema_version() == 1


def test_a_failing_on_start_raises_start_failed_and_its_writes_are_rolled_back(open_instance):
    def on_start(self):
        self.sql.execute("INSERT INTO t VALUES (1)")
        self.storage.put("started", True)
        raise ValueError("not today")

    cls = define("BadStart", migrations=["CREATE TABLE t (x)"], on_start=on_start)
    instance = open_instance(cls, hydrate=False)
    with pytest.raises(StartFailed) as caught:
        instance.hydrate()
    assert "on_start() failed: ValueError" in str(caught.value) and "not today" not in str(caught.value)
    assert not instance.is_open
    with pytest.raises(RuntimeError):  # no call runs on it
        instance.run_batch([call(instance, "anything")])
    assert peek(instance.path, "SELECT count(*) FROM t") == [(0,)]
    assert peek(instance.path, "SELECT count(*) FROM _solo_kv") == [(0,)]
    assert meta(instance.path, "schema_version") == 1  # the migration before it stays applied


def test_on_start_runs_before_calls_and_may_write_state(open_instance):
    def on_start(self):
        self.storage.put("starts", self.storage.get("starts", 0) + 1)
        self.seen = []

    def note(self, x: int) -> dict:
        self.seen.append(x)
        return {"seen": self.seen, "starts": self.storage.get("starts")}

    cls = define("Starter", on_start=on_start, note=rpc(note))
    first = open_instance(cls)
    assert run(first, "note", x=1).result == {"seen": [1], "starts": 1}
    first.close()
    again = open_instance(cls, epoch=2, like=first)
    assert run(again, "note", x=2).result == {"seen": [2], "starts": 2}


# -- calls -------------------------------------------------------------------


def test_calls_in_a_batch_run_in_order(open_instance):
    instance = open_instance(Ledger)
    outcomes = instance.run_batch([call(instance, "append", tag=t) for t in "abcd"]).outcomes
    assert [o.result for o in outcomes] == [1, 2, 3, 4]
    entries = run(instance, "entries").result
    assert [e["tag"] for e in entries] == list("abcd")
    for before, after in zip(entries, entries[1:]):
        assert before["ended_ns"] <= after["started_ns"]


def test_a_method_that_raises_changes_nothing_and_earlier_calls_in_the_batch_stay_committed(open_instance):
    instance = open_instance(Fragile)
    calls = [call(instance, "add", text="kept"), call(instance, "add_then_fail", text="lost"), call(instance, "count")]
    ids = [c.call_id for c in calls]
    outcomes = instance.run_batch(calls).outcomes
    assert [o.ok for o in outcomes] == [True, False, True]
    assert outcomes[0].result == 1
    assert outcomes[1].error == {
        "code": "method_error",
        "message": f"Fragile.add_then_fail raised ValueError; its message is in the worker's log (call {ids[1]})",
        "type": "ValueError",
    }
    assert outcomes[2].result == 1

    # The object keeps serving, and the failed call's SQL and KV writes are gone for good.
    assert run(instance, "add", text="next").result == 2
    assert peek(instance.path, "SELECT text FROM notes ORDER BY rowid") == [("kept",), ("next",)]
    assert peek(instance.path, "SELECT count(*) FROM _solo_kv WHERE key = 'last'") == [(0,)]


def test_a_failing_first_call_of_a_batch_changes_nothing_and_the_calls_after_it_commit(open_instance):
    # The batch's first call writes in no savepoint: its failure rolls the transaction back and begins it again.
    instance = open_instance(Fragile)
    calls = [call(instance, "add_then_fail", text="lost"), call(instance, "add", text="kept"), call(instance, "count")]
    outcomes = instance.run_batch(calls).outcomes
    assert [o.ok for o in outcomes] == [False, True, True]
    assert outcomes[1].result == 1 and outcomes[2].result == 1
    assert peek(instance.path, "SELECT text FROM notes ORDER BY rowid") == [("kept",)]
    assert peek(instance.path, "SELECT count(*) FROM _solo_kv WHERE key = 'last'") == [(0,)]
    # Each call's outcome is recorded, the failure too: repeated, none runs again.
    assert [o.ok for o in instance.run_batch(calls).outcomes] == [False, True, True]
    assert peek(instance.path, "SELECT count(*) FROM _solo_calls") == [(3,)]
    (alone,) = instance.run_batch([call(instance, "add_then_fail", text="lost again")]).outcomes
    assert not alone.ok
    assert run(instance, "add", text="next").result == 2


def test_an_unexpected_exception_is_logged_with_its_message_and_only_its_type_goes_to_the_caller(open_instance, caplog):
    instance = open_instance(Fragile)
    failing = call(instance, "add_then_fail", text="secret text", kind="crash")
    with caplog.at_level(logging.ERROR, logger="solo.objects.runtime.instance"):
        (outcome,) = instance.run_batch([failing]).outcomes
    assert outcome.error["type"] == "ValueError" and "boom" not in outcome.error["message"]
    assert failing.call_id in outcome.error["message"]
    (record,) = [r for r in caplog.records if failing.call_id in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert f"Fragile/{instance.name}.add_then_fail" in record.getMessage()
    assert record.exc_info is not None and str(record.exc_info[1]) == "boom"  # message and traceback, in the log


def test_under_solo_debug_the_caller_gets_the_exceptions_message(open_instance):
    fragile = open_instance(Fragile, debug=True)
    error = run(fragile, "add_then_fail", text="x").error
    assert error == {"code": "method_error", "message": "boom", "type": "ValueError"}

    def on_start(self):
        raise ValueError("not today")

    starting = open_instance(define("DebugStart", on_start=on_start), hydrate=False, debug=True)
    with pytest.raises(StartFailed, match="on_start\\(\\) failed: ValueError: not today"):
        starting.hydrate()


def test_a_user_error_outcome_carries_its_status_and_code(open_instance):
    def reserve(self, sku: str) -> None:
        self.storage.put(sku, "reserved")
        raise UserError(f"{sku} is out of stock", status=422, code="out_of_stock")

    fragile = open_instance(Fragile)
    outcome = run(fragile, "add_then_fail", text="x", kind="user")
    assert not outcome.ok
    assert outcome.error == {"code": "user_error", "message": "conflict: try later", "status": 409, "type": "UserError"}
    assert run(fragile, "count").result == 0

    shop = open_instance(define("Shop", reserve=rpc(reserve)))
    outcome = run(shop, "reserve", sku="hat")
    assert outcome.error == {
        "code": "out_of_stock",
        "message": "hat is out of stock",
        "status": 422,
        "type": "UserError",
    }
    assert peek(shop.path, "SELECT count(*) FROM _solo_kv") == [(0,)]


def test_a_non_json_result_is_a_failed_call_and_its_writes_are_rolled_back(open_instance):
    def leak(self) -> dict:
        self.sql.execute("INSERT INTO t VALUES (1)")
        self.storage.put("leaked", 1)
        return {"when": object()}

    def nan(self) -> float:
        self.sql.execute("INSERT INTO t VALUES (2)")
        return float("nan")

    def count(self) -> int:
        return self.sql.execute("SELECT count(*) FROM t").fetchone()[0]

    instance = open_instance(
        define("Leaky", migrations=["CREATE TABLE t (x)"], leak=rpc(leak), nan=rpc(nan), count=rpc(count))
    )
    outcomes = instance.run_batch([call(instance, "leak"), call(instance, "nan"), call(instance, "count")]).outcomes
    assert [o.ok for o in outcomes] == [False, False, True]
    for failed in outcomes[:2]:
        assert failed.error["code"] == "method_error"
        assert "not JSON-serialisable" in failed.error["message"]
    assert outcomes[2].result == 0
    assert peek(instance.path, "SELECT count(*) FROM _solo_kv") == [(0,)]

    fragile = open_instance(Fragile)
    assert run(fragile, "unsendable").error["code"] == "method_error"


def test_a_result_that_is_not_valid_utf8_is_a_failed_call_and_is_rolled_back(open_instance):
    fragile = open_instance(Fragile)
    outcome = run(fragile, "lone_surrogate", text="kept?")
    assert outcome.error["code"] == "method_error"
    assert run(fragile, "count").result == 0


def test_an_unknown_method_or_bad_arguments_fail_only_that_call(open_instance):
    instance = open_instance(Fragile)
    outcomes = instance.run_batch(
        [
            call(instance, "add", text="a"),
            call(instance, "no_such_method"),
            call(instance, "add", text=3),
            call(instance, "add", text="b", extra=True),
            call(instance, "add", text="c"),
        ]
    ).outcomes
    assert [o.ok for o in outcomes] == [True, False, False, False, True]
    assert outcomes[1].error["code"] == "unknown_method"
    assert outcomes[2].error["code"] == "invalid_arguments"
    assert "argument 'text' must be str" in outcomes[2].error["message"]
    assert outcomes[3].error["code"] == "invalid_arguments"
    assert "unknown argument 'extra'" in outcomes[3].error["message"]
    assert outcomes[4].result == 2


def test_storage_writes_in_a_call_commit_with_the_batch(open_instance):
    def remember(self, key: str, value: dict) -> None:
        self.storage.put(key, value)

    def recall(self, key: str) -> dict | None:
        return self.storage.get(key)

    cls = define("Memory", remember=rpc(remember), recall=rpc(recall))
    first = open_instance(cls)
    assert run(first, "remember", key="k", value={"a": [1]}).ok
    first.close()
    assert run(open_instance(cls, epoch=2, like=first), "recall", key="k").result == {"a": [1]}


# -- exactly once --------------------------------------------------------------


def test_a_call_id_that_already_ran_returns_its_recorded_outcome_without_running_again(open_instance):
    instance = open_instance(Counter)
    first = call(instance, "increment", by=10)
    assert instance.run_batch([first]).outcomes[0].result == 10

    outcomes = instance.run_batch([first, call(instance, "increment", by=1)]).outcomes
    assert outcomes[0] == Outcome.success(first.call_id, 10)
    assert outcomes[1].result == 11
    assert instance._user.hits == 2  # the replayed call did not run
    assert run(instance, "get").result == 11


def test_a_call_recorded_before_a_restart_is_not_run_again_by_the_next_owner(open_instance):
    first = open_instance(Counter)
    once = call(first, "increment", by=7)
    first.run_batch([once])
    first.close()
    assert recorded_outcomes(first.path)[once.call_id].result == 7

    again = open_instance(Counter, epoch=2, like=first)
    assert again.run_batch([once]).outcomes[0].result == 7
    assert again._user.hits == 0
    assert run(again, "get").result == 7


def test_an_object_with_few_calls_drops_expired_call_records_within_a_minute(tmp_path):
    now = [1_000_000]
    instance = ObjectInstance(
        Counter,
        object_id=object_id("test", "Counter", "few"),
        name="few",
        path=tmp_path / "few.sqlite",
        epoch=1,
        call_retention_ms=10_000,
        clock_ms=lambda: now[0],
    )
    instance.hydrate()
    try:
        old = call(instance, "increment", by=1)
        instance.run_batch([old])
        now[0] += 30_000  # expired, but the last prune was under a minute ago
        run(instance, "get")
        assert old.call_id in recorded_outcomes(instance.path)
        now[0] += 31_000
        recent = call(instance, "increment", by=1)
        instance.run_batch([recent])
        assert set(recorded_outcomes(instance.path)) >= {recent.call_id}
        assert old.call_id not in recorded_outcomes(instance.path)
    finally:
        instance.close()


def test_the_same_call_id_twice_in_one_batch_runs_once(open_instance):
    instance = open_instance(Counter)
    twice = call(instance, "increment", by=3)
    outcomes = instance.run_batch([twice, twice]).outcomes
    assert [o.result for o in outcomes] == [3, 3]
    assert instance._user.hits == 1
    assert run(instance, "get").result == 3


def test_a_failed_call_is_also_answered_from_its_record(open_instance):
    instance = open_instance(Fragile)
    failing = call(instance, "add_then_fail", text="x", kind="user")
    (first,) = instance.run_batch([failing]).outcomes
    (replayed,) = instance.run_batch([failing]).outcomes
    assert replayed == first and not replayed.ok
    assert run(instance, "count").result == 0


# -- fencing --------------------------------------------------------------------


def test_a_newer_owner_cannot_open_the_file_an_older_owner_holds_open_in_this_process(open_instance):
    # Object files take no locks (connection.OBJECT_VFS): the process refuses a second connection.
    old = open_instance(Counter, epoch=1)
    assert run(old, "increment").result == 1
    new = open_instance(Counter, epoch=2, like=old, hydrate=False)

    with pytest.raises(FileInUse):
        new.hydrate()
    assert not new.is_open
    assert meta(old.path, "epoch") == 1
    assert run(old, "increment").result == 2


def test_a_suspended_older_owner_cannot_resume_after_a_takeover(open_instance):
    old = open_instance(Counter, epoch=1)
    run(old, "increment")
    old.suspend()
    new = open_instance(Counter, epoch=2, like=old)

    late = call(old, "increment", by=100)
    with pytest.raises(FileInUse):  # the newer owner holds the file open
        old.run_batch([late])
    new.suspend()
    with pytest.raises(OwnershipLost):  # the file holds the newer epoch
        old.run_batch([late])
    assert late.call_id not in recorded_outcomes(old.path)
    assert meta(old.path, "epoch") == 2
    old.close()  # as its host does once it lost ownership
    assert run(new, "get").result == 1


def test_hydrating_with_an_epoch_lower_than_the_files_raises_ownership_lost(open_instance):
    current = open_instance(Counter, epoch=5)
    run(current, "increment")
    current.close()

    stale = open_instance(Counter, epoch=3, like=current, hydrate=False)
    with pytest.raises(OwnershipLost):
        stale.hydrate()
    assert not stale.is_open
    assert meta(current.path, "epoch") == 5

    assert run(open_instance(Counter, epoch=6, like=current), "get").result == 1


# -- the SQL guard ----------------------------------------------------------------


FORBIDDEN_SQL = [
    "BEGIN",
    "BEGIN IMMEDIATE",  # solo's own text: must not slip through a cached statement
    "COMMIT",
    "commit",
    "END",
    "ROLLBACK",
    "SAVEPOINT mine",
    "SAVEPOINT solo_call",
    "RELEASE solo_call",
    "ROLLBACK TO solo_call",
    "ATTACH DATABASE ':memory:' AS other",
    "DETACH DATABASE main",
    "PRAGMA journal_mode",
    "PRAGMA journal_mode=DELETE",
    "PRAGMA wal_checkpoint",
    "PRAGMA synchronous=OFF",
]


@pytest.mark.parametrize("statement", FORBIDDEN_SQL)
def test_user_sql_cannot_control_transactions_attach_or_change_the_journal(open_instance, statement):
    def write_then(self, statement: str) -> str:
        self.sql.execute("INSERT INTO t VALUES ('from the failing call')")
        self.sql.execute(statement)
        return "ran"

    def add(self, x: str) -> int:
        self.sql.execute("INSERT INTO t VALUES (?)", (x,))
        return self.sql.execute("SELECT count(*) FROM t").fetchone()[0]

    cls = define("Guarded", migrations=["CREATE TABLE t (x TEXT)"], write_then=rpc(write_then), add=rpc(add))
    instance = open_instance(cls)
    outcomes = instance.run_batch(
        [
            call(instance, "add", x="before"),
            call(instance, "write_then", statement=statement),
            call(instance, "add", x="after"),
        ]
    ).outcomes
    assert [o.ok for o in outcomes] == [True, False, True], outcomes
    assert outcomes[1].error["code"] == "sql_not_allowed"
    assert outcomes[2].result == 2
    assert peek(instance.path, "SELECT x FROM t ORDER BY rowid") == [("before",), ("after",)]
    assert peek(instance.path, "PRAGMA journal_mode") == [("wal",)]
    assert run(instance, "add", x="later").result == 3


SOLO_TABLE_SQL = [
    "SELECT * FROM _solo_calls",
    "SELECT value FROM _solo_kv WHERE key = ?",  # storage's own text: must not slip through a cached statement
    "DELETE FROM _solo_kv",
    "UPDATE _solo_meta SET value = 99 WHERE key = 'epoch'",
    "INSERT OR REPLACE INTO _solo_meta (key, value) VALUES ('epoch', 99)",
    "DROP TABLE _solo_outbox",
    "DELETE FROM _SOLO_ALARMS",
    "CREATE TRIGGER sneaky AFTER INSERT ON _solo_calls BEGIN SELECT 1; END",
    "CREATE INDEX mine ON _solo_kv (value)",
    "PRAGMA table_info(_solo_meta)",
]


@pytest.mark.parametrize("statement", SOLO_TABLE_SQL)
def test_user_sql_cannot_touch_solos_own_tables_but_storage_still_works(open_instance, statement):
    def through_storage(self, x: str) -> str:
        self.storage.put("k", x)  # storage reaches _solo_kv: solo's code, not the user's SQL
        return self.storage.get("k")

    def touch(self, statement: str, cursor: bool) -> str:
        self.sql.execute("INSERT INTO t VALUES ('from the failing call')")
        params = ("k",) if "?" in statement else ()
        (self.sql.cursor().execute if cursor else self.sql.execute)(statement, params)
        return "ran"

    cls = define(
        "Sealed", migrations=["CREATE TABLE t (x TEXT)"], touch=rpc(touch), through_storage=rpc(through_storage)
    )
    instance = open_instance(cls)
    assert run(instance, "through_storage", x="a").result == "a"
    for cursor in (False, True):
        outcome = run(instance, "touch", statement=statement, cursor=cursor)
        assert not outcome.ok
        assert outcome.error["code"] == "sql_not_allowed" and "solo's own tables" in outcome.error["message"], outcome
    assert peek(instance.path, "SELECT count(*) FROM t") == [(0,)]
    assert meta(instance.path, "epoch") == instance.epoch
    assert run(instance, "through_storage", x="b").result == "b"


def test_a_migration_cannot_touch_solos_own_tables(open_instance):
    cls = define("SealedMigration", migrations=["CREATE TABLE t (x TEXT)", "DELETE FROM _solo_calls"])
    with pytest.raises(StartFailed, match="solo's own tables"):
        open_instance(cls)


def test_rows_from_self_sql_work_by_index_and_by_column_name(open_instance):
    def row(self) -> dict:
        r = self.sql.execute("SELECT 7 AS number, 'seven' AS word").fetchone()
        return {
            "by_index": [r[0], r[1]],
            "by_name": [r["number"], r["word"]],
            "keys": list(r.keys()),
            "as_dict": dict(r),
        }

    result = run(open_instance(define("Rows", row=rpc(row))), "row").result
    assert result == {
        "by_index": [7, "seven"],
        "by_name": [7, "seven"],
        "keys": ["number", "word"],
        "as_dict": {"number": 7, "word": "seven"},
    }


# -- suspend / resume ---------------------------------------------------------------


def test_suspend_and_resume_keep_in_memory_state_and_data(open_instance):
    instance = open_instance(Counter)
    assert run(instance, "increment", by=2).result == 2
    user = instance._user

    instance.suspend()
    assert not instance.is_open
    instance.resume()
    assert instance.is_open
    assert run(instance, "increment").result == 3

    instance.suspend()
    assert run(instance, "increment").result == 4  # run_batch resumes by itself
    assert instance._user is user and user.hits == 3


def test_a_file_suspended_without_sync_is_synced_when_closed_for_good(open_instance, monkeypatch):
    synced: list[Path] = []
    monkeypatch.setattr("solo.objects.runtime.instance.sync_file", synced.append)
    instance = open_instance(Counter)
    run(instance, "increment")
    instance.suspend()  # closing to bound open files: its checkpoint is not synced
    assert instance._conn is None and synced == []  # noqa: SLF001
    run(instance, "increment")  # reopened

    instance.close()  # before the file could be marked clean: synced
    assert synced == [instance.path]


def test_a_file_never_suspended_is_not_synced_again_when_closed(open_instance, monkeypatch):
    synced: list[Path] = []
    monkeypatch.setattr("solo.objects.runtime.instance.sync_file", synced.append)
    instance = open_instance(Counter)
    run(instance, "increment")
    instance.close()  # its own checkpoint was synced
    assert synced == []


def test_a_file_that_cannot_grow_abandons_the_batch_instead_of_failing_the_call(open_instance):
    # Given: an object whose file may grow by a few pages only (SQLite answers SQLITE_FULL past
    # max_page_count, as it does when the disk is full)
    instance = open_instance(Bulky)
    pages = instance._conn.execute("PRAGMA page_count").fetchone()[0]  # noqa: SLF001 - the owner's own file
    instance._conn.execute(f"PRAGMA max_page_count = {pages + 8}")  # noqa: SLF001
    grow = call(instance, "grow", kib=256)

    # When / Then: the batch fails as a whole with DiskFull, not with an outcome for the call ...
    with pytest.raises(DiskFull):
        instance.run_batch([grow])
    # ... nothing of it was committed, so another worker runs it from the durable state
    assert grow.call_id not in recorded_outcomes(instance.path)
    assert peek(instance.path, "SELECT count(*) FROM filler") == [(0,)]
    # and the object still takes what fits
    assert run(instance, "touch").result == 1


def test_out_of_space_is_seen_through_errors_that_wrap_it():
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL
    try:
        try:
            raise full
        except sqlite3.OperationalError as exc:
            raise RuntimeError("the user's own error") from exc
    except RuntimeError as wrapped:
        assert out_of_space(wrapped)
    assert out_of_space(OSError(errno.ENOSPC, "No space left on device"))
    assert not out_of_space(sqlite3.OperationalError("database is locked"))
    assert not out_of_space(OSError(errno.EACCES, "Permission denied"))
