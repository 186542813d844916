"""Example durable objects, loaded by default (SOLO_OBJECTS=examples)."""

from .agent import Agent
from .agent_session import AgentSession
from .analytics import Analytics
from .camera import CameraPoller
from .counter import Counter
from .customer import Customer
from .foundation import ChatAgent, SessionAgent, TaskAgent
from .ratelimiter import RateLimiter
from .tableshard import TableShard
from .tenant import Tenant
from .workflow import Workflow

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
