"""durable object state: log, snapshots, head sequence, tombstones

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("objects") as batch:
        batch.add_column(sa.Column("head_seq", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("snapshot_seq", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("log_bytes", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "object_log",
        sa.Column("object_id", sa.String(32), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("page_size", sa.Integer, nullable=False),
        sa.Column("db_pages", sa.BigInteger, nullable=False),
        sa.Column("frames", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "object_snapshots",
        sa.Column("object_id", sa.String(32), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("image", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("object_snapshots")
    op.drop_table("object_log")
    with op.batch_alter_table("objects") as batch:
        for column in ("deleted", "log_bytes", "snapshot_seq", "head_seq"):
            batch.drop_column(column)
