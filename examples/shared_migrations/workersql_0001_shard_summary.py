"""workersql: workersql_shard_summary, each TableShard's tables with their row counts and last write

Revision ID: workersql_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "workersql_0001"
down_revision = None
branch_labels = ("workersql",)
depends_on = None


def upgrade() -> None:
    # One row per (shard, table), replaced as a whole by each sync of the shard.
    op.create_table(
        "workersql_shard_summary",
        sa.Column("shard", sa.String(256), primary_key=True),
        sa.Column("table_name", sa.Text, primary_key=True),
        sa.Column("tenant", sa.String(256), nullable=False),
        sa.Column("row_count", sa.BigInteger, nullable=False),
        sa.Column("last_write_ms", sa.BigInteger, nullable=True),
        sa.Column("synced_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("workersql_shard_summary_by_tenant", "workersql_shard_summary", ["tenant", "shard"])


def downgrade() -> None:
    op.drop_index("workersql_shard_summary_by_tenant", table_name="workersql_shard_summary")
    op.drop_table("workersql_shard_summary")
