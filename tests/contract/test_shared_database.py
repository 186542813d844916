"""self.shared: writes to shared tables commit exactly when the call's own state does.

Runs on SQLite and on Postgres as the shared database (the `engine` fixture).
"""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from solo.examples.counter import Counter
from solo.objects.calls import Call
from solo.objects.errors import OwnershipLost
from solo.objects.naming import new_call_id, object_id
from solo.objects.runtime.instance import ObjectInstance
from solo.objects.state.catalog import Catalog
from solo.objects.state.store import StateStore
from tests.objects import Notebook


@pytest.fixture
def notes_table(engine):
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE IF NOT EXISTS test_shared_notes (owner TEXT NOT NULL, text TEXT NOT NULL,"
                " PRIMARY KEY (owner, text))"
            )
        )


@pytest.fixture
def activate_notebook(activate, notes_table):
    return lambda name, worker="w1": activate(Notebook, name, worker)


def call(instance: ObjectInstance, method: str, **args) -> Call:
    return Call(new_call_id(), instance.object_id, instance.cls.__name__, instance.name, method, args)


def shared_notes(engine, owner: str) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT text FROM test_shared_notes WHERE owner = :o ORDER BY text"), {"o": owner})
        return [r[0] for r in rows]


@pytest.fixture
def name() -> str:
    return f"nb-{uuid.uuid4().hex[:8]}"


def test_a_calls_shared_write_is_there_once_the_call_has_answered(activate_notebook, engine, name):
    notebook = activate_notebook(name)
    (outcome,) = notebook.run_batch([call(notebook, "add", text="a")]).outcomes
    assert outcome.ok and outcome.result == 1
    assert shared_notes(engine, name) == ["a"]


def test_a_failed_call_leaves_no_shared_write_and_the_batch_keeps_the_others(activate_notebook, engine, name):
    notebook = activate_notebook(name)
    outcomes = notebook.run_batch(
        [call(notebook, "add", text="a"), call(notebook, "add", text="b", fail=True), call(notebook, "add", text="c")]
    ).outcomes
    assert [o.ok for o in outcomes] == [True, False, True]
    assert shared_notes(engine, name) == ["a", "c"]
    assert notebook.run_batch([call(notebook, "local")]).outcomes[0].result == ["a", "c"]


def test_a_failed_statement_that_the_call_catches_undoes_only_itself(activate_notebook, engine, name):
    notebook = activate_notebook(name)
    (outcome,) = notebook.run_batch([call(notebook, "add_tolerating_a_duplicate", text="x")]).outcomes
    assert outcome.ok, outcome.error
    assert shared_notes(engine, name) == ["x", "x (again)"]


def test_reads_see_the_batchs_own_writes(activate_notebook, name):
    notebook = activate_notebook(name)
    first, second = notebook.run_batch([call(notebook, "add", text="a"), call(notebook, "shared_notes")]).outcomes
    assert first.ok and second.result == ["a"]


def test_a_read_that_writes_is_refused_and_writes_nothing(activate_notebook, engine, name):
    notebook = activate_notebook(name)
    (outcome,) = notebook.run_batch([call(notebook, "write_through_query", text="sneaky")]).outcomes
    assert not outcome.ok and outcome.error["code"] == "method_error"
    assert shared_notes(engine, name) == []


def test_a_fenced_owners_shared_writes_never_commit(activate_notebook, engine, name):
    # Given an owner that has been taken over by another worker
    former = activate_notebook(name, worker="w1")
    assert former.run_batch([call(former, "add", text="before")]).outcomes[0].ok
    current = activate_notebook(name, worker="w2")
    # When the former owner runs a call that writes shared rows
    with pytest.raises(OwnershipLost):
        former.run_batch([call(former, "add", text="from the former owner")])
    # Then its shared write is not there, and the new owner's are
    assert current.run_batch([call(current, "add", text="after")]).outcomes[0].ok
    assert shared_notes(engine, name) == ["after", "before"]


def test_on_start_reads_the_shared_database_to_rebuild(activate_notebook, engine, name):
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO test_shared_notes (owner, text) VALUES (:o, 'kept elsewhere')"), {"o": name})
    notebook = activate_notebook(name)
    assert notebook.run_batch([call(notebook, "started_with")]).outcomes[0].result == ["kept elsewhere"]


def test_shared_writes_without_a_change_to_the_file_are_fenced_too(engine, notes_table, name):
    """StateStore.commit_shared: the path for shared writes that come with no local change."""
    catalog, store = Catalog(engine), StateStore(engine)
    oid = object_id("test", "Counter", name)
    first = catalog.take_over(oid, "test", "Counter", name, "w1", known_schema=len(Counter.migrations))

    def write(text: str) -> sa.Connection:
        conn = engine.connect()
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        conn.execute(sa.text("INSERT INTO test_shared_notes (owner, text) VALUES (:o, :t)"), {"o": name, "t": text})
        return conn

    assert store.commit_shared(oid, first.epoch, write("owner"))
    catalog.take_over(oid, "test", "Counter", name, "w2", known_schema=len(Counter.migrations))
    assert not store.commit_shared(oid, first.epoch, write("former owner"))
    assert shared_notes(engine, name) == ["owner"]
