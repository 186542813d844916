"""tenants: an object's identity includes its tenant; the deployment's secret for keyed call ids

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

Objects and alarms that exist already belong to tenant ``default`` (whose object ids
are computed as before). The secret is made here, once, for every API process to share.
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: SQLite (the embedded default) can change a constraint only by copying the table.
    with op.batch_alter_table("objects") as objects:
        objects.add_column(sa.Column("tenant", sa.String(64), nullable=False, server_default="default"))
        objects.drop_constraint("objects_address_key", type_="unique")
        objects.create_unique_constraint("objects_address_key", ["namespace", "tenant", "class_name", "name"])
    with op.batch_alter_table("alarms") as alarms:
        alarms.add_column(sa.Column("tenant", sa.String(64), nullable=False, server_default="default"))
    op.create_index("alarms_by_tenant", "alarms", ["namespace", "tenant", "next_ms"])
    installation = op.create_table(
        "installation",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.CheckConstraint("id = 1", name="installation_one_row"),
    )
    op.bulk_insert(installation, [{"id": 1, "secret": secrets.token_hex(32)}])


def downgrade() -> None:
    op.drop_table("installation")
    op.drop_index("alarms_by_tenant", table_name="alarms")
    with op.batch_alter_table("alarms") as alarms:
        alarms.drop_column("tenant")
    with op.batch_alter_table("objects") as objects:
        objects.drop_constraint("objects_address_key", type_="unique")
        objects.create_unique_constraint("objects_address_key", ["namespace", "class_name", "name"])
        objects.drop_column("tenant")
