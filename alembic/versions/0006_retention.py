"""retention: the epoch floor under objects made anew after their tombstone was pruned

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    floor = op.create_table(
        "epoch_floor",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.CheckConstraint("id = 1", name="epoch_floor_one_row"),
    )
    op.bulk_insert(floor, [{"id": 1, "epoch": 0}])


def downgrade() -> None:
    op.drop_table("epoch_floor")
