"""foundation: the agents' business rows (chat history, tasks, sessions), their generations and the audit log

Revision ID: foundation_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "foundation_0001"
down_revision = None
branch_labels = ("foundation",)
depends_on = None


def upgrade() -> None:
    # Absent row: generation 0. A reset bumps it; rebuilds read only the current generation.
    op.create_table(
        "foundation_generations",
        sa.Column("agent_class", sa.String(128), primary_key=True),
        sa.Column("agent_name", sa.String(256), primary_key=True),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("reset_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "foundation_chat_history",
        sa.Column("session_id", sa.String(256), primary_key=True),
        sa.Column("generation", sa.Integer, primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "foundation_tasks",
        sa.Column("agent", sa.String(256), primary_key=True),
        sa.Column("generation", sa.Integer, primary_key=True),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("foundation_tasks_by_status", "foundation_tasks", ["status", "updated_ms"])
    op.create_table(
        "foundation_sessions",
        sa.Column("session_id", sa.String(256), primary_key=True),
        sa.Column("generation", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("tenant", sa.String(256), nullable=False),
        sa.Column("attributes", sa.Text, nullable=False),
        sa.Column("started_ms", sa.BigInteger, nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger, nullable=False),
        sa.Column("ended_ms", sa.BigInteger, nullable=True),
    )
    op.create_index("foundation_sessions_by_tenant", "foundation_sessions", ["tenant", "user_id"])
    op.create_table(
        "foundation_audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("agent_class", sa.String(128), nullable=False),
        sa.Column("agent_name", sa.String(256), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(256), nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("foundation_audit_log_by_agent", "foundation_audit_log", ["agent_class", "agent_name", "id"])


def downgrade() -> None:
    op.drop_index("foundation_audit_log_by_agent", table_name="foundation_audit_log")
    op.drop_table("foundation_audit_log")
    op.drop_index("foundation_sessions_by_tenant", table_name="foundation_sessions")
    op.drop_table("foundation_sessions")
    op.drop_index("foundation_tasks_by_status", table_name="foundation_tasks")
    op.drop_table("foundation_tasks")
    op.drop_table("foundation_chat_history")
    op.drop_table("foundation_generations")
