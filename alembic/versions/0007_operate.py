"""operate: object names in byte order on PostgreSQL, so the address index serves listings

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

``GET /v1/objects`` pages through the catalog by (class, name) after a cursor, and
``prefix`` is a range of names. Both are ranges of the unique index on (namespace,
tenant, class_name, name) only if the index orders names as the queries compare them,
whatever the database's collation: byte order (``COLLATE "C"``), which SQLite uses
already. Names stay equal exactly when their bytes are, so uniqueness is unchanged; the
index is rebuilt.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_COLUMNS = (("class_name", 128), ("name", 1024))


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column, length in _COLUMNS:
        op.alter_column(
            "objects",
            column,
            type_=sa.String(length, collation="C"),
            existing_type=sa.String(length),
            existing_nullable=False,
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column, length in _COLUMNS:
        op.alter_column(
            "objects",
            column,
            type_=sa.String(length, collation="default"),
            existing_type=sa.String(length, collation="C"),
            existing_nullable=False,
        )
