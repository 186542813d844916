"""Example durable objects, loaded by default (SOLO_OBJECTS=examples)."""

from .counter import Counter

__all__ = ["Counter"]
