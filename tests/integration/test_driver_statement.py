"""The shipment's and the takeover's statements run on a pooled connection through psycopg
(objects/state/driver_statement.py): the pool gets the connection back as its other users expect it,
and failures are SQLAlchemy's errors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from solo.objects.errors import SchemaTooNew
from solo.objects.naming import object_id
from solo.objects.state.catalog import Catalog
from solo.objects.state.driver_statement import DriverStatements
from solo.objects.state.schema import make_engine


@pytest.fixture
def one_connection(postgres_url) -> Iterator[Engine]:
    """An engine whose pool keeps one connection, so that each use gets the same one back."""
    engine = make_engine(postgres_url, connections=1)
    yield engine
    engine.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def test_a_statement_autocommits_and_hands_the_connection_back_transactional(one_connection):
    engine = one_connection
    driver = DriverStatements(engine)
    pid = _backend_pid(engine)
    # the statement commits by itself: no transaction is left open on the server
    assert driver.first_column("SELECT pg_backend_pid() WHERE %(x)s::int = 1", {"x": 1}) == [pid]
    assert driver.execute("SELECT txid_current_if_assigned() FROM generate_series(1, %(n)s)", {"n": 3}) == 3
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() == pid  # the same connection
        assert conn.connection.driver_connection.autocommit is False
        conn.execute(sa.text("CREATE TEMP TABLE t (x int)"))
        conn.rollback()  # a transaction as before: the table was never made
        assert conn.execute(sa.text("SELECT to_regclass('pg_temp.t')")).scalar_one() is None


def test_a_failing_statement_raises_sqlalchemys_error_and_the_connection_stays_usable(one_connection):
    engine = one_connection
    driver = DriverStatements(engine)
    pid = _backend_pid(engine)
    with pytest.raises(sa.exc.ProgrammingError) as raised:
        driver.execute("SELECT * FROM no_such_table WHERE x = %(secret)s", {"secret": "pages of an object"})
    assert "pages of an object" not in str(raised.value)  # parameters are never shown
    assert not raised.value.connection_invalidated
    assert driver.execute("SELECT 1", {}) == 1
    assert _backend_pid(engine) == pid


def test_a_lost_connection_is_an_operational_error_and_the_next_gets_a_fresh_one(one_connection, postgres_url):
    engine = one_connection
    driver = DriverStatements(engine)
    lost = _backend_pid(engine)
    _terminate(postgres_url, lost)
    with pytest.raises(sa.exc.OperationalError) as raised:  # what workers/host.py takes for "unreachable"
        driver.execute("SELECT 1", {})
    assert raised.value.connection_invalidated
    assert driver.execute("SELECT 1", {}) == 1
    assert _backend_pid(engine) != lost


def test_a_takeover_on_a_lost_connection_is_an_operational_error_and_the_next_one_takes_the_object(
    one_connection, postgres_url
):
    # Given a catalog whose pool holds one connection, and that connection's server process killed
    engine = one_connection
    catalog = Catalog(engine)
    name = f"lost-{uuid.uuid4().hex[:8]}"
    oid = object_id("test", "Counter", name)
    first = catalog.take_over(oid, "test", "Counter", name, "w1", known_schema=0)
    _terminate(postgres_url, _backend_pid(engine))
    # When the next takeover runs, it fails as workers/host.py recognises an unreachable database
    with pytest.raises(sa.exc.OperationalError) as raised:
        catalog.take_over(oid, "test", "Counter", name, "w2", known_schema=0)
    assert raised.value.connection_invalidated
    # Then nothing was minted, and the one after it takes the object on a fresh connection
    assert catalog.take_over(oid, "test", "Counter", name, "w2", known_schema=0).epoch == first.epoch + 1


def test_a_takeover_refused_for_a_newer_schema_writes_nothing(one_connection):
    engine = one_connection
    catalog = Catalog(engine)
    name = f"newer-{uuid.uuid4().hex[:8]}"
    oid = object_id("test", "Counter", name)
    first = catalog.take_over(oid, "test", "Counter", name, "w1", known_schema=2)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE objects SET schema_version = 2 WHERE id = :id"), {"id": oid})
    with pytest.raises(SchemaTooNew, match="schema version 2"):
        catalog.take_over(oid, "test", "Counter", name, "w2", known_schema=1)
    assert catalog.take_over(oid, "test", "Counter", name, "w3", known_schema=2).epoch == first.epoch + 1


def _terminate(postgres_url: str, pid: int) -> None:
    admin = make_engine(postgres_url)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            conn.commit()
    finally:
        admin.dispose()
