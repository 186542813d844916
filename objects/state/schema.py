"""The shared database's schema (SQLAlchemy Core) and how to connect to it.

Postgres in production, a SQLite file in the embedded default. The schema is
owned by Alembic (alembic/versions); ``metadata`` here is what those
migrations must produce, and a test compares the two.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

metadata = sa.MetaData()

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only


def _byte_ordered(length: int) -> sa.types.TypeEngine[str]:
    """Text compared byte by byte on PostgreSQL too (COLLATE "C"), as SQLite compares it: the address
    index then serves listings' pages and name prefixes as ranges, whatever the database's collation."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


objects_table = sa.Table(
    "objects",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("namespace", sa.String(64), nullable=False),
    sa.Column("class_name", _byte_ordered(128), nullable=False),
    sa.Column("name", _byte_ordered(1024), nullable=False),
    sa.Column("tenant", sa.String(64), nullable=False, server_default="default"),
    sa.Column("epoch", sa.BigInteger, nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("state_bytes", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_active_at", sa.DateTime(timezone=True), nullable=False),
    # The object's durable state: snapshot at snapshot_seq plus log records up to head_seq.
    sa.Column("head_seq", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("snapshot_seq", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("log_bytes", sa.BigInteger, nullable=False, server_default="0"),  # shipped since the snapshot
    # Deleted objects keep their row so that epochs keep growing: a former owner stays fenced.
    sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("namespace", "tenant", "class_name", "name", name="objects_address_key"),
)

log_table = sa.Table(
    "object_log",
    metadata,
    sa.Column("object_id", sa.String(32), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("epoch", sa.BigInteger, nullable=False),
    sa.Column("page_size", sa.Integer, nullable=False),
    sa.Column("db_pages", sa.BigInteger, nullable=False),
    sa.Column("frames", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

snapshots_table = sa.Table(
    "object_snapshots",
    metadata,
    sa.Column("object_id", sa.String(32), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("epoch", sa.BigInteger, nullable=False),
    sa.Column("image", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# One row: the highest epoch any pruned tombstone had (state/epoch_floor.py). An object row made
# anew starts above it, so an owner of a pruned former incarnation stays fenced.
epoch_floor_table = sa.Table(
    "epoch_floor",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("epoch", sa.BigInteger, nullable=False),
    sa.CheckConstraint("id = 1", name="epoch_floor_one_row"),
)

activations_table = sa.Table(
    "activations",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("object_id", sa.String(32), nullable=False),
    sa.Column("epoch", sa.BigInteger, nullable=False),
    sa.Column("worker_id", sa.String(200), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("object_id", "epoch", name="activations_object_epoch_key"),
)


# The shared index of every object's alarms and schedules (state/alarm_index.py): rows are
# written in the same transaction as the log record of the commit that changed them.
alarms_table = sa.Table(
    "alarms",
    metadata,
    sa.Column("object_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("namespace", sa.String(64), nullable=False),
    sa.Column("class_name", sa.String(128), nullable=False),
    sa.Column("object_name", sa.String(1024), nullable=False),
    sa.Column("tenant", sa.String(64), nullable=False, server_default="default"),
    sa.Column("method", sa.String(200), nullable=False),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("scheduled_ms", sa.BigInteger, nullable=True),
    sa.Column("next_ms", sa.BigInteger, nullable=True),  # NULL: dropped after its retries failed
    sa.Column("retry_count", sa.Integer, nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("last_error_ms", sa.BigInteger, nullable=True),
    sa.Column("last_fired_ms", sa.BigInteger, nullable=True),
    sa.Index("alarms_by_due", "next_ms"),
    sa.Index("alarms_by_class", "class_name", "next_ms"),
    sa.Index("alarms_by_tenant", "namespace", "tenant", "next_ms"),
)


# One row: the deployment's secret, made by migration 0005 (state/installation.py).
installation_table = sa.Table(
    "installation",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("secret", sa.String(64), nullable=False),
    sa.CheckConstraint("id = 1", name="installation_one_row"),
)


# API keys (state/keys.py). The key itself is never stored: only the SHA-256 of the whole key.
api_keys_table = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("rate", sa.String(32), nullable=True),  # e.g. "100/s"; NULL: no limit
    sa.Column("label", sa.String(200), nullable=True),
    sa.Column("token_sha256", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("scope IN ('call', 'admin', 'operator')", name="api_keys_scope_check"),
)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def normalize_url(url: str) -> str:
    """Accept plain postgres:// URLs and use the psycopg 3 driver for them."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


def make_engine(url: str, *, connections: int = 10) -> Engine:
    """An engine for the shared database that keeps up to `connections` connections open.

    Give it at least as many as threads that use it at once: a connection beyond the pool
    is opened and closed for each use, which costs a new server process on Postgres.
    """
    url = normalize_url(url)
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _wal(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            # readers and the writer must not block each other
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")

        return engine
    # No pre-ping: it would add a round trip to every shipment. A dropped connection fails
    # that one shipment; the worker drops the object and it comes back from durable state.
    return sa.create_engine(
        url, pool_size=connections, max_overflow=20, pool_recycle=1800, connect_args=UNREACHABLE_POSTGRES
    )


# A server the network no longer reaches (a partition, a host gone) must fail a statement within
# about a lease TTL, not after the kernel's retransmissions (about 15 minutes): a worker blocked in
# a shipment goes on renewing the leases of the objects it cannot serve, so no other worker takes
# them over (bench/partition.py). TCP_USER_TIMEOUT bounds only data the server's kernel has not
# acknowledged, so a long query is never cut; keepalives find a server that went silent while a
# statement ran (TCP_USER_TIMEOUT then bounds their probes too). Both bounds are half the default
# lease TTL (2 s) or libpq's least, so the objects of a worker cut off from PostgreSQL alone are
# handed over within about one TTL; a slow server is not cut by them (its kernel still acknowledges).
UNREACHABLE_POSTGRES = {
    "connect_timeout": 2,  # seconds (libpq's unit; it takes no less than 2)
    "tcp_user_timeout": 1000,  # milliseconds
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 1,
    "keepalives_count": 3,
}
