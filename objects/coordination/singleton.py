"""A lease that one process in the whole system holds at a time (the scheduler's).

``hold()`` takes the lease or extends it in one round trip and says whether
this process has just become the holder, so the caller can redo what a new
holder must (the scheduler refills its time index). A Redis restart loses the
key; the next ``hold()`` of any contender takes it again.
"""

from __future__ import annotations

import enum
import secrets

import redis

from solo.objects.coordination import scripts


class Holding(enum.IntEnum):
    NO = 0  # someone else holds it
    KEPT = 1  # we held it and extended it
    TAKEN = 2  # we just took it


class SingletonLease:
    def __init__(self, client: redis.Redis, key: str, holder: str, ttl_ms: int) -> None:
        self.key = key
        self.value = f"{holder}|{secrets.token_hex(8)}"
        self.ttl_ms = ttl_ms
        self._hold = client.register_script(scripts.source("hold"))
        self._let_go = client.register_script(scripts.source("let_go"))

    def hold(self) -> Holding:
        return Holding(int(self._hold(keys=[self.key], args=[self.value, self.ttl_ms])))

    def release(self) -> None:
        self._let_go(keys=[self.key], args=[self.value])
