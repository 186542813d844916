"""Example durable objects, loaded by default (SOLO_OBJECTS=examples)."""

# Counter first: `solo dev`'s banner shows a call to the first class defined (the README's quick start).
from solo.examples.counter import Counter  # noqa: I001
from solo.examples.agent import Agent
from solo.examples.agent_session import AgentSession
from solo.examples.analytics import Analytics
from solo.examples.camera import CameraPoller
from solo.examples.conversation import Conversation
from solo.examples.customer import Customer
from solo.examples.foundation import ChatAgent, SessionAgent, TaskAgent
from solo.examples.notification import Notification
from solo.examples.ratelimiter import RateLimiter
from solo.examples.tableshard import TableShard
from solo.examples.tenant import Tenant
from solo.examples.workflow import Workflow

__all__ = [
    "Agent",
    "AgentSession",
    "Analytics",
    "CameraPoller",
    "ChatAgent",
    "Conversation",
    "Counter",
    "Customer",
    "Notification",
    "RateLimiter",
    "SessionAgent",
    "TableShard",
    "TaskAgent",
    "Tenant",
    "Workflow",
]
