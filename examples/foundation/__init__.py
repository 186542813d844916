"""Foundation agents: per-object state with the shared database as the source of truth.

ChatAgent (a conversation), TaskAgent (a task queue) and SessionAgent (a user session)
keep their working state in their own SQLite tables and write the same rows to shared
`foundation_*` tables (created by `examples/shared_migrations/foundation_0001_agents.py`)
in the same call. See agent.py for rebuild (pattern A), reset (pattern B) and export.
"""

from solo.examples.foundation.chat import ChatAgent
from solo.examples.foundation.sessions import SessionAgent
from solo.examples.foundation.tasks import TaskAgent

__all__ = ["ChatAgent", "SessionAgent", "TaskAgent"]
