"""Who waits on whom: the edges of calls between objects that are waiting, for cycles across chains.

A waiting call carries its own chain (objects/remote.py refuses A -> B -> A within it). Two
chains can still close a cycle: A serves one outside call and waits on B while B serves
another and calls A. B's call queues behind A's, which waits for B, and both would wait out
their whole timeout. So every object that starts waiting records an edge "I wait on T" (one
key per object: its calls are serial, so it waits on one call at a time) and then follows the
edges from T; coming back to itself is a cycle, refused at once with `call_cycle`.

Recording before following means that of two calls closing a cycle at the same moment, the
later one to record sees the other's edge (both may see it, and both fail: a deadlock either
way). An edge lives while its wait does, and at most the wait's timeout if its worker dies.
"""

from __future__ import annotations

import json

import redis

from solo.objects.coordination.keys import Keys

# Chains longer than this are not followed to their end (calls between objects nest far less).
MAX_HOPS = 64


class WaitGraph:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys

    def wait(self, caller_id: str, caller: str, target_id: str, target: str, ttl_ms: int) -> list[str] | None:
        """Record that `caller` waits on `target`; return the cycle this closes (names, the caller
        first and last), or None. On a cycle the edge is removed again: the caller will not wait."""
        edge = json.dumps([target_id, caller, target])
        self._redis.set(self._keys.waits_for(caller_id), edge, px=max(ttl_ms, 1))
        cycle = self._cycle(caller_id, caller, target_id, target)
        if cycle is not None:
            self.done(caller_id)
        return cycle

    def done(self, caller_id: str) -> None:
        """The caller's wait ended (answered, failed or timed out)."""
        self._redis.delete(self._keys.waits_for(caller_id))

    def _cycle(self, caller_id: str, caller: str, target_id: str, target: str) -> list[str] | None:
        path, current, seen = [caller, target], target_id, {caller_id}
        for _ in range(MAX_HOPS):
            if current == caller_id:
                return path
            if current in seen:  # a cycle that does not pass through the caller: its members see it
                return None
            seen.add(current)
            raw = self._redis.get(self._keys.waits_for(current))
            if raw is None:
                return None
            current, _, waited_on = json.loads(raw)
            path.append(waited_on)
        return None
