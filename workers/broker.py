"""Dramatiq on Redis: the broker, the activation message, and the actors.

Dramatiq carries activations only (and later alarms and background work) on a
few shared queues; the order of an object's calls lives in its mailbox, so a
duplicated or reordered activation is harmless.
"""

from __future__ import annotations

import redis
from dramatiq import Actor, Message
from dramatiq.brokers.redis import RedisBroker

from solo.objects.coordination.keys import Keys
from solo.objects.settings import Settings

ACTIVATE_QUEUE = "solo-activate"
ACTIVATE_ACTOR = "activate"

# Object ids one activation message carries at most: the activations an API process or the
# scheduler asks for at once go out together (docs/adr/0025); more than this go in several
# messages, so that several workers may share them.
MAX_IDS_PER_MESSAGE = 32


def make_broker(settings: Settings, client: redis.Redis) -> RedisBroker:
    """A fresh broker (never the global one): each host and each test gets its own."""
    return RedisBroker(client=client, namespace=Keys(settings.key_prefix).dramatiq_namespace)


def activation_message(*object_ids: str) -> Message:
    """One message for these objects: the worker that takes it takes them all (ObjectHost.activate)."""
    return Message(queue_name=ACTIVATE_QUEUE, actor_name=ACTIVATE_ACTOR, args=object_ids, kwargs={}, options={})


class DramatiqDispatcher:
    """Sends activation messages; used by the API, the scheduler and workers' sweepers."""

    def __init__(self, broker: RedisBroker) -> None:
        self._broker = broker

    def __call__(self, *object_ids: str) -> None:
        for start in range(0, len(object_ids), MAX_IDS_PER_MESSAGE):
            self._broker.enqueue(activation_message(*object_ids[start : start + MAX_IDS_PER_MESSAGE]))


def declare_actors(broker: RedisBroker, activate) -> Actor:
    """Bind the activation actor to `broker`. No retries: the sweeper is the recovery path."""
    return Actor(
        activate,
        broker=broker,
        actor_name=ACTIVATE_ACTOR,
        queue_name=ACTIVATE_QUEUE,
        priority=0,
        options={"max_retries": 0, "time_limit": 60_000},
    )
