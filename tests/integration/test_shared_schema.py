"""The Alembic migrations produce exactly the schema objects/catalog.py declares.

Compared with Alembic's autogenerate on SQLite and on Postgres: an empty diff
means a migration and the models agree (tables, columns, types, nullability,
constraints). Also: the migrations can be walked down and up again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from objects.catalog import Catalog, make_engine, metadata
from objects.migrate import alembic_config, upgrade

TABLES = {"objects", "activations", "object_log", "object_snapshots", "alarms"}


def schema_diff(engine: sa.Engine) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(context, metadata)


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def user_tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_sqlite_migrations_match_the_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        assert user_tables(engine) == TABLES
        assert current_revision(engine) == head_revision()
        assert schema_diff(engine) == []
    finally:
        engine.dispose()


def test_postgres_migrations_match_the_models(postgres_url):
    engine = make_engine(postgres_url)
    try:
        assert user_tables(engine) == TABLES
        assert current_revision(engine) == head_revision()
        assert schema_diff(engine) == []
    finally:
        engine.dispose()


def test_the_diff_would_notice_a_difference(tmp_path):
    """The comparison is not vacuous: a column the models lack shows up."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE objects ADD COLUMN stray INTEGER"))
        diff = schema_diff(engine)
        assert [d[0] for d in diff] == ["remove_column"]
        assert diff[0][3].name == "stray"
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_on_a_fresh_sqlite_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    config = alembic_config(url)
    engine = make_engine(url)
    try:
        for _ in range(2):
            command.upgrade(config, "head")
            assert user_tables(engine) == TABLES
            assert current_revision(engine) == head_revision()
            assert schema_diff(engine) == []
            command.downgrade(config, "base")
            assert user_tables(engine) == set()
            assert current_revision(engine) is None
        command.upgrade(config, "head")
        assert schema_diff(engine) == []
        # The upgraded database works: the catalog can mint an epoch in it.
        assert Catalog(engine).take_over("0" * 32, "default", "Counter", "a", "w1", known_schema=2).epoch == 1
    finally:
        engine.dispose()
