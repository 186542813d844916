"""alarms: the shared index of every object's alarms and schedules

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alarms",
        sa.Column("object_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("namespace", sa.String(64), nullable=False),
        sa.Column("class_name", sa.String(128), nullable=False),
        sa.Column("object_name", sa.String(1024), nullable=False),
        sa.Column("method", sa.String(200), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("scheduled_ms", sa.BigInteger, nullable=True),
        sa.Column("next_ms", sa.BigInteger, nullable=True),
        sa.Column("retry_count", sa.Integer, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("last_error_ms", sa.BigInteger, nullable=True),
        sa.Column("last_fired_ms", sa.BigInteger, nullable=True),
    )
    op.create_index("alarms_by_due", "alarms", ["next_ms"])
    op.create_index("alarms_by_class", "alarms", ["class_name", "next_ms"])


def downgrade() -> None:
    op.drop_index("alarms_by_class", table_name="alarms")
    op.drop_index("alarms_by_due", table_name="alarms")
    op.drop_table("alarms")
