"""object catalog and activation ledger

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "objects",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("namespace", sa.String(64), nullable=False),
        sa.Column("class_name", sa.String(128), nullable=False),
        sa.Column("name", sa.String(1024), nullable=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("state_bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_active_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("namespace", "class_name", "name", name="objects_address_key"),
    )
    op.create_table(
        "activations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("object_id", sa.String(32), nullable=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("worker_id", sa.String(200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("object_id", "epoch", name="activations_object_epoch_key"),
    )


def downgrade() -> None:
    op.drop_table("activations")
    op.drop_table("objects")
