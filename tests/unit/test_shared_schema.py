"""The Alembic migrations produce exactly the schema objects/state/schema.py declares.

Compared with Alembic's autogenerate on SQLite: an empty diff means a
migration and the models agree (tables, columns, types, nullability,
constraints). Also: the migrations can be walked down and up again, and
applications bring shared tables of their own. The same comparison on
PostgreSQL is tests/integration/test_postgres_schema.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from solo.objects.naming import object_id
from solo.objects.state.catalog import Catalog
from solo.objects.state.installation import installation_secret
from solo.objects.state.migrate import alembic_config, upgrade
from solo.objects.state.schema import make_engine, metadata

ROOT = Path(__file__).resolve().parents[2]
TABLES = {
    "objects",
    "activations",
    "object_log",
    "object_snapshots",
    "alarms",
    "api_keys",
    "installation",
    "epoch_floor",
}


def schema_diff(engine: sa.Engine) -> list:
    """Differences between solo's models and the database (tables of applications are not solo's)."""
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_name": lambda name, kind, _parent: kind != "table" or name in TABLES,
            },
        )
        return compare_metadata(context, metadata)


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    """solo's own revision (applications' branches may be there too)."""
    with engine.connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    solo = [h for h in heads if h[0].isdigit()]  # "0006"; applications' are "shop_0001"
    return solo[0] if solo else None


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


def _write_app(root: Path, package: str, revision: str, table: str) -> None:
    """A package that serves objects and brings a shared table of its own, as an application would."""
    (root / package / "shared_migrations").mkdir(parents=True)
    (root / package / "__init__.py").write_text("")
    (root / package / "shared_migrations" / f"{revision}.py").write_text(
        textwrap.dedent(
            f"""
            import sqlalchemy as sa
            from alembic import op

            revision = "{revision}"
            down_revision = None
            branch_labels = ("{package}",)
            depends_on = None

            def upgrade():
                op.create_table("{table}", sa.Column("id", sa.Integer, primary_key=True))

            def downgrade():
                op.drop_table("{table}")
            """
        )
    )


def test_an_application_adds_its_own_shared_tables_on_a_branch_of_its_own(tmp_path, monkeypatch):
    # Given two applications, each with a migration in shared_migrations/ next to its module
    _write_app(tmp_path, "shop", "shop_0001", "shop_orders")
    _write_app(tmp_path, "crm", "crm_0001", "crm_contacts")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "__init__.py").write_text("")  # serves objects, brings no tables
    monkeypatch.syspath_prepend(str(tmp_path))
    url = f"sqlite:///{tmp_path / 'shared.db'}"

    # When the shared database is migrated for them (twice: it is idempotent)
    upgrade(url, ["shop", "crm", "plain", "shop"])
    upgrade(url, ["shop", "crm", "plain"])

    # Then solo's tables and both applications' tables are there, each branch at its head
    engine = make_engine(url)
    try:
        assert user_tables(engine) == TABLES | {"shop_orders", "crm_contacts"}
        with engine.connect() as conn:
            heads = set(MigrationContext.configure(conn).get_current_heads())
        assert heads == {head_revision(), "shop_0001", "crm_0001"}
        assert schema_diff(engine) == []
    finally:
        engine.dispose()


def test_solo_migrate_applies_the_served_modules_migrations(tmp_path):
    _write_app(tmp_path, "inventory", "inventory_0001", "inventory_items")
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLO_")}
    env.update(DATABASE_URL=url, SOLO_OBJECTS="inventory", PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    done = subprocess.run(
        [sys.executable, "-m", "solo", "migrate"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    engine = make_engine(url)
    try:
        assert "inventory_items" in user_tables(engine)
    finally:
        engine.dispose()


def test_a_database_migrated_for_other_modules_says_which_instead_of_a_traceback(tmp_path):
    # Given a database migrated while `shop` was served (a first `solo dev` with another SOLO_OBJECTS)
    _write_app(tmp_path, "shop", "shop_0001", "shop_orders")
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLO_")}
    env.update(DATABASE_URL=url, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))

    def migrate(objects: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "solo", "migrate"],
            cwd=ROOT,
            env={**env, "SOLO_OBJECTS": objects},
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert migrate("shop").returncode == 0

    # When it is migrated for modules without shop's migrations
    refused = migrate("solo.examples.counter")

    # Then one line names the revision it does not know and what to do
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused.stderr
    assert "shop_0001" in refused.stderr and "SOLO_OBJECTS=solo.examples.counter" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_served_module_that_does_not_exist_is_named(tmp_path):
    with pytest.raises(ModuleNotFoundError, match="no_such_app"):
        upgrade(f"sqlite:///{tmp_path / 'shared.db'}", ["no_such_app"])


def test_objects_from_before_tenants_belong_to_tenant_default(tmp_path):
    url = f"sqlite:///{tmp_path / 'older.db'}"
    config = alembic_config(url)
    engine = make_engine(url)
    older = object_id("default", "Counter", "a")
    try:
        command.upgrade(config, "0004")
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO objects (id, namespace, class_name, name, epoch, created_at, last_active_at)"
                    " VALUES (:id, 'default', 'Counter', 'a', 3, '2026-01-01', '2026-01-01')"
                ),
                {"id": older},
            )
        command.upgrade(config, "head")

        catalog = Catalog(engine)
        info = catalog.get(older)
        assert info is not None and (info.tenant, info.epoch) == ("default", 3)
        # The same address in another tenant is another object, with an entry of its own.
        acme = object_id("default", "Counter", "a", "acme")
        assert catalog.take_over(acme, "default", "Counter", "a", "w1", known_schema=1, tenant="acme").epoch == 1
        assert catalog.take_over(older, "default", "Counter", "a", "w1", known_schema=1).tenant == "default"
        assert len(installation_secret(engine)) == 32  # made by the migration, once
    finally:
        engine.dispose()
