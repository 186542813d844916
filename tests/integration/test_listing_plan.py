"""The listing's queries are ranges of the address index on PostgreSQL, whatever the catalog holds.

A plan, not a timing: with many objects in the catalog (and statistics that say so), each
shape of the listing query reads the unique index on (namespace, tenant, class_name, name)
in its order, with no sequential scan and no sort, touching only the pages of the rows it
returns, so that a page costs the same at a million objects as at a thousand.
"""

from __future__ import annotations

import re
import uuid

import pytest
import sqlalchemy as sa

from solo.objects.state.catalog import classes_query, page_query
from solo.objects.state.schema import make_engine

OBJECTS = 100_000


@pytest.fixture
def crowded(postgres_url):
    """A namespace of its own with OBJECTS objects in three classes (and another tenant's beside them)."""
    namespace = f"plan-{uuid.uuid4().hex[:8]}"
    engine = make_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO objects (id, namespace, tenant, class_name, name, epoch, created_at, last_active_at)"
                " SELECT md5(:ns || i::text), :ns, CASE WHEN i % 10 = 0 THEN 'acme' ELSE 'default' END,"
                " (ARRAY['Counter', 'Ledger', 'Tally'])[1 + i % 3], 'n-' || lpad(i::text, 7, '0'), 1, now(), now()"
                " FROM generate_series(1, :count) AS i"
            ),
            {"ns": namespace, "count": OBJECTS},
        )
        conn.execute(sa.text("ANALYZE objects"))
    yield engine, namespace
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM objects WHERE namespace = :ns"), {"ns": namespace})
    engine.dispose()


def plan(engine, query) -> str:
    """The plan PostgreSQL ran, with the pages it touched (BUFFERS): a count, not a time."""
    compiled = query.compile(dialect=engine.dialect)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) " + str(compiled), compiled.params).all()
    return "\n".join(r[0] for r in rows)


def pages_touched(shown: str) -> int:
    """Shared buffers the whole query touched (hit, read or dirtied), from its top node."""
    line = next(line for line in shown.splitlines() if "Buffers:" in line)
    return sum(int(n) for n in re.findall(r"(?:hit|read|dirtied|written)=(\d+)", line))


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"class_name": "Ledger"},
        {"class_name": "Ledger", "prefix": "n-00012"},
        {"after": ("Counter", "n-0050000")},
        {"class_name": "Tally", "prefix": "n-0", "after": ("Tally", "n-0070000")},
    ],
)
def test_every_shape_of_the_listing_query_is_one_range_of_the_address_index(crowded, filters):
    engine, namespace = crowded
    shown = plan(engine, page_query(namespace, "default", limit=101, **filters))
    assert "Index Scan using objects_address_key" in shown, shown
    assert "Seq Scan" not in shown and "Sort" not in shown, shown
    # A page's own rows and the index pages above them; reading up to the cursor would be thousands.
    assert pages_touched(shown) < 100, shown


def test_the_classes_of_a_tenant_are_found_one_index_probe_each(crowded):
    engine, namespace = crowded
    shown = plan(engine, classes_query(namespace, "default", ""))
    assert "Seq Scan" not in shown and pages_touched(shown) < 100, shown
    with engine.connect() as conn:
        assert conn.execute(classes_query(namespace, "default", "")).scalars().all() == ["Counter", "Ledger", "Tally"]
        assert conn.execute(classes_query(namespace, "default", "Ledger")).scalars().all() == ["Ledger", "Tally"]


def test_a_page_after_a_cursor_starts_right_after_it(crowded):
    engine, namespace = crowded
    with engine.connect() as conn:
        first = conn.execute(page_query(namespace, "default", class_name="Tally", limit=3)).all()
        after = (first[-1].class_name, first[-1].name)
        second = conn.execute(page_query(namespace, "default", class_name="Tally", after=after, limit=3)).all()
    names = [r.name for r in first + second]
    assert names == sorted(names) and len(set(names)) == 6
