"""The Alembic migrations produce exactly the schema objects/state/schema.py declares, on PostgreSQL.

The same comparison on SQLite, and the other migration tests, are in tests/unit/test_shared_schema.py.
"""

from __future__ import annotations

from solo.objects.state.schema import make_engine
from tests.unit.test_shared_schema import TABLES, current_revision, head_revision, schema_diff, user_tables


def test_postgres_migrations_match_the_models(postgres_url):
    engine = make_engine(postgres_url)
    try:
        assert user_tables(engine) >= TABLES  # the examples' own tables are there too
        assert current_revision(engine) == head_revision()
        assert schema_diff(engine) == []
    finally:
        engine.dispose()
