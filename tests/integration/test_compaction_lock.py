"""On PostgreSQL one compaction pass runs at a time per namespace (an advisory lock), and a pass vacuums.

The passes themselves, on both backends, are in tests/contract/test_retention.py.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from solo.objects.state.compactor import Compactor, lock_key
from solo.objects.state.schema import make_engine, utcnow


def test_a_pass_is_skipped_while_another_holds_its_namespace(postgres_url):
    engine = make_engine(postgres_url)
    namespace, other = f"lock-{uuid.uuid4().hex[:8]}", f"lock-{uuid.uuid4().hex[:8]}"
    try:
        with engine.connect() as holder:
            holder.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": lock_key(namespace)})
            skipped = Compactor(engine, namespace, 86400).run(cutoff=utcnow())
            assert not skipped.complete and skipped.objects == 0
            assert Compactor(engine, other, 86400).run(cutoff=utcnow()).complete  # another namespace runs
            holder.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": lock_key(namespace)})
        assert Compactor(engine, namespace, 86400).run(cutoff=utcnow()).complete
    finally:
        engine.dispose()
