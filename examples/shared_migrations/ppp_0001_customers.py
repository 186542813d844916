"""ppp: the customer directory (one row per Customer, written by the Customer itself)

Revision ID: ppp_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "ppp_0001"
down_revision = None
branch_labels = ("ppp",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ppp_customers",
        sa.Column("id", sa.String(256), primary_key=True),  # the Customer object's name
        sa.Column("tenant", sa.String(256), nullable=False),  # the Tenant object's name
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("company", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("lead_score", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),  # epoch ms
    )
    op.create_index("ppp_customers_by_tenant", "ppp_customers", ["tenant", "status", "name"])


def downgrade() -> None:
    op.drop_index("ppp_customers_by_tenant", table_name="ppp_customers")
    op.drop_table("ppp_customers")
