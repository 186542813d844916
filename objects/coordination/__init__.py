"""Coordination through Redis: who runs an object, and what it must run.

Owns every Redis key name (keys.py), each object's mailbox, leases and the
sweeper's `live` index, the singleton lease, the scheduler's time index of alarms
due soon, and the Lua scripts that make multi-key operations atomic. Redis
decides routing and liveness only: nothing durable lives here.
"""
