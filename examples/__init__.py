"""Example durable objects, loaded by default (SOLO_OBJECTS=examples)."""

from solo.examples.agent import Agent
from solo.examples.agent_session import AgentSession
from solo.examples.analytics import Analytics
from solo.examples.camera import CameraPoller
from solo.examples.counter import Counter
from solo.examples.customer import Customer
from solo.examples.foundation import ChatAgent, SessionAgent, TaskAgent
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
    "Counter",
    "Customer",
    "RateLimiter",
    "SessionAgent",
    "TableShard",
    "TaskAgent",
    "Tenant",
    "Workflow",
]
