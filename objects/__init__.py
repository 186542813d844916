"""solo's object model: what a user writes and what runs it.

User code imports from here: ``from objects import DurableObject, rpc, UserError``.
"""

from .definition import DurableObject, rpc
from .errors import UserError

__all__ = ["DurableObject", "UserError", "rpc"]
