"""solo's object model: what a user writes and what runs it.

User code imports from here: ``from objects import DurableObject, rpc, UserError``
(and ``AlarmInfo``, the type of an ``alarm(self, info)`` handler's argument).
"""

from .alarms import AlarmInfo
from .definition import DurableObject, rpc
from .errors import UserError

__all__ = ["AlarmInfo", "DurableObject", "UserError", "rpc"]
