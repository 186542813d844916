"""Every Redis key solo uses is built here, and only here.

Keys of one object share the hash tag ``{id}``, but the scripts do not keep to
one Redis Cluster slot: ``enqueue.lua`` touches the object's mailbox and lease,
the call's record, the ``live`` index and a worker's wake list in one script,
and ``complete.lua`` a caller's reply list. solo therefore needs one Redis
(or a Cluster-compatible layout it does not have yet), not a Redis Cluster.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str

    # one object
    def mailbox(self, object_id: str) -> str:
        return f"{self.prefix}:obj:{{{object_id}}}:mailbox"

    def lease(self, object_id: str) -> str:
        return f"{self.prefix}:obj:{{{object_id}}}:lease"

    def poisoned(self, object_id: str) -> str:
        """LIST of the object's latest poisoned calls (JSON), newest first, for operators."""
        return f"{self.prefix}:obj:{{{object_id}}}:poisoned"

    def waits_for(self, object_id: str) -> str:
        """STRING while the object waits on a call to another: that object's id and both names (JSON)."""
        return f"{self.prefix}:obj:{{{object_id}}}:waits_for"

    # one call
    def call(self, call_id: str) -> str:
        return f"{self.prefix}:call:{call_id}"

    # processes
    def wake(self, worker_id: str) -> str:
        """List a worker process blocks on: object ids whose mailbox just became non-empty."""
        return f"{self.prefix}:wake:{worker_id}"

    def replies(self, listener_id: str) -> str:
        """List an API process blocks on: replies to the calls it is waiting for."""
        return f"{self.prefix}:replies:{listener_id}"

    def worker(self, worker_id: str) -> str:
        """A worker process's heartbeat record (JSON, objects/coordination/workers.py), with a TTL."""
        return f"{self.prefix}:worker:{worker_id}"

    def alive(self, worker_id: str) -> str:
        """A worker process's lease heartbeat: its generation, with a TTL of one lease TTL. Every lease
        naming this worker and generation is live while it exists (leases.py, ADR 0004)."""
        return f"{self.prefix}:alive:{worker_id}"

    @property
    def workers(self) -> str:
        """ZSET of worker ids scored by their record's deadline (ms): who to read, without a SCAN."""
        return f"{self.prefix}:workers"

    # WebSocket gateways (API processes holding sockets; objects/coordination/gateways.py)
    def gateway_inbox(self, gateway_id: str) -> str:
        """List an API process pops: messages objects send to the sockets it holds."""
        return f"{self.prefix}:gateway:{gateway_id}:inbox"

    def gateway_sockets(self, gateway_id: str) -> str:
        """HASH of the sockets an API process holds: socket id -> the object's address (JSON)."""
        return f"{self.prefix}:gateway:{gateway_id}:sockets"

    @property
    def gateways(self) -> str:
        """ZSET of live API processes holding sockets, scored by a deadline their heartbeat moves (ms).

        A member past its deadline died: a worker's reaper closes its sockets at their objects.
        """
        return f"{self.prefix}:gateways"

    # indexes
    @property
    def live(self) -> str:
        """ZSET of objects with queued calls (or an activation on its way), scored by a deadline (ms).

        An owned object's deadline is its owner's heartbeat expiry; an unowned one's, the end of
        its activation's grace period. A member past its deadline is either owned by a dead
        worker or waiting for an activation that was lost: the sweeper re-dispatches it. An
        owned object whose mailbox is empty is not in it (complete.lua removes it), so idle
        objects cost the sweeper nothing.
        """
        return f"{self.prefix}:live"

    @property
    def alarms_due(self) -> str:
        """ZSET of alarms due soon, scored by due time (ms): the scheduler's time index.

        Members are JSON ``[object id, class, object name, alarm name]``. Only alarms due
        within the scheduler's horizon are here; the shared ``alarms`` table holds all.
        """
        return f"{self.prefix}:alarms:due"

    @property
    def scheduler(self) -> str:
        """The scheduler's lease: one scheduler dispatches at a time."""
        return f"{self.prefix}:scheduler"

    @property
    def scheduler_look(self) -> str:
        """STRING, the moment (ms) the leading scheduler looks at the time index next, at the latest.

        Written by each pass (``due_and_next.lua``); an announcement of an alarm due before it
        lowers it and publishes on ``scheduler_wake`` (``announce.lua``). Missing: every
        announcement that adds an alarm publishes."""
        return f"{self.prefix}:scheduler:look"

    @property
    def scheduler_wake(self) -> str:
        """Pub/sub channel the leading scheduler listens on: an alarm is due before its next look."""
        return f"{self.prefix}:scheduler:wake"

    @property
    def compaction(self) -> str:
        """Set, with SOLO_COMPACT_INTERVAL_S to live, when the scheduler starts a compaction pass:
        while it exists no scheduler starts another, whichever holds the lease."""
        return f"{self.prefix}:compaction"

    @property
    def rate_limits(self) -> str:
        """Prefix of the API keys' rate-limit counters (api/auth.py, through the `limits` library).

        Under it, ``{LIMITER/<key id>/<amount>/<multiples>/<unit>}`` and the same with ``/-1``: the
        current and previous windows of a key's sliding-window counter.
        """
        return f"{self.prefix}:rate"

    @property
    def dramatiq_namespace(self) -> str:
        return f"{self.prefix}-dramatiq"

    def pattern(self) -> str:
        """Glob matching every key under this prefix (for tests)."""
        return f"{self.prefix}:*"
