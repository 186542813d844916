"""The shared database's object catalog and activation ledger (SQLAlchemy Core).

Postgres in production, a SQLite file in the embedded default. The schema is
owned by Alembic (alembic/versions); ``metadata`` here is what those
migrations must produce, and a test compares the two.

The catalog mints fencing epochs: every takeover increments the object's
epoch in the same transaction that records the activation, so two owners can
never hold the same epoch, even across a Redis restart.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from solo.objects.errors import SchemaTooNew

metadata = sa.MetaData()

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only

objects_table = sa.Table(
    "objects",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("namespace", sa.String(64), nullable=False),
    sa.Column("class_name", sa.String(128), nullable=False),
    sa.Column("name", sa.String(1024), nullable=False),
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
    sa.UniqueConstraint("namespace", "class_name", "name", name="objects_address_key"),
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


# The shared index of every object's alarms and schedules (objects/alarm_index.py): rows are
# written in the same transaction as the log record of the commit that changed them.
alarms_table = sa.Table(
    "alarms",
    metadata,
    sa.Column("object_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("namespace", sa.String(64), nullable=False),
    sa.Column("class_name", sa.String(128), nullable=False),
    sa.Column("object_name", sa.String(1024), nullable=False),
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
        def _wal(dbapi_connection, _record):  # readers and the writer must not block each other
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")

        return engine
    # No pre-ping: it would add a round trip to every shipment. A dropped connection fails
    # that one shipment; the worker drops the object and it comes back from durable state.
    return sa.create_engine(url, pool_size=connections, max_overflow=20, pool_recycle=1800)


@dataclass(frozen=True)
class ObjectInfo:
    id: str
    namespace: str
    class_name: str
    name: str
    epoch: int
    schema_version: int
    state_bytes: int
    created_at: dt.datetime
    last_active_at: dt.datetime
    head_seq: int


@dataclass(frozen=True)
class Takeover:
    epoch: int
    head_seq: int  # the last durable log record: hydrate restores up to here
    schema_version: int  # as recorded; the worker records a new one only when migrations change it


@dataclass(frozen=True)
class Activation:
    object_id: str
    epoch: int
    worker_id: str
    started_at: dt.datetime
    stopped_at: dt.datetime | None


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite hands back naive datetimes; every time stored here is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


class Catalog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def take_over(
        self, object_id: str, namespace: str, class_name: str, name: str, worker_id: str, known_schema: int
    ) -> Takeover:
        """Mint the next epoch for an object (creating or reviving its entry) and record the activation.

        Refuses (SchemaTooNew, nothing changed) when the object's schema is newer
        than the `known_schema` migrations of the calling worker's code.
        """
        now = utcnow()
        t = objects_table
        upsert = (
            self._insert(t)
            .values(
                id=object_id,
                namespace=namespace,
                class_name=class_name,
                name=name,
                epoch=1,
                created_at=now,
                last_active_at=now,
            )
            .on_conflict_do_update(
                index_elements=[t.c.id],
                set_={
                    "epoch": t.c.epoch + 1,
                    "last_active_at": now,
                    "deleted": False,
                    "schema_version": sa.case((t.c.deleted, 0), else_=t.c.schema_version),
                },
                where=sa.or_(t.c.schema_version <= known_schema, t.c.deleted),
            )
            .returning(t.c.epoch, t.c.head_seq, t.c.schema_version)
        )
        with self.engine.begin() as conn:
            row = conn.execute(upsert).first()
            if row is None:
                version = conn.execute(sa.select(t.c.schema_version).where(t.c.id == object_id)).scalar()
                raise SchemaTooNew(
                    f"{class_name}/{name} has schema version {version}; this code knows {known_schema} migrations"
                )
            epoch, head_seq, schema_version = int(row[0]), int(row[1]), int(row[2])
            conn.execute(
                activations_table.insert().values(object_id=object_id, epoch=epoch, worker_id=worker_id, started_at=now)
            )
        return Takeover(epoch, head_seq, schema_version)

    def record_schema(self, object_id: str, epoch: int, schema_version: int) -> None:
        """After migrations: older code must now refuse this object."""
        t = objects_table
        with self.engine.begin() as conn:
            conn.execute(
                t.update().where(t.c.id == object_id, t.c.epoch == epoch).values(schema_version=schema_version)
            )

    def record_stop(self, object_id: str, epoch: int, *, state_bytes: int, schema_version: int) -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(
                activations_table.update()
                .where(activations_table.c.object_id == object_id, activations_table.c.epoch == epoch)
                .values(stopped_at=now)
            )
            conn.execute(
                objects_table.update()
                .where(objects_table.c.id == object_id, objects_table.c.epoch == epoch)
                .values(last_active_at=now, state_bytes=state_bytes, schema_version=schema_version)
            )

    def get(self, object_id: str) -> ObjectInfo | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(*(objects_table.c[f.name] for f in fields(ObjectInfo))).where(
                        objects_table.c.id == object_id, objects_table.c.deleted.is_(False)
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        values = dict(row)
        values["created_at"] = _aware(values["created_at"])
        values["last_active_at"] = _aware(values["last_active_at"])
        return ObjectInfo(**values)

    def history(self, object_id: str) -> list[Activation]:
        a = activations_table
        query = sa.select(a.c.object_id, a.c.epoch, a.c.worker_id, a.c.started_at, a.c.stopped_at)
        with self.engine.connect() as conn:
            rows = conn.execute(query.where(a.c.object_id == object_id).order_by(a.c.epoch)).all()
        return [Activation(r[0], r[1], r[2], _aware(r[3]), _aware(r[4])) for r in rows]

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
