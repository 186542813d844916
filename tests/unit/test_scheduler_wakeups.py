"""The scheduler's wake channel itself: what its wait counts as a wake-up, and that `solo dev`'s embedded
Redis carries it (the scheduler's loop on a fake clock: tests/contract/test_scheduler_wakeups.py)."""

from __future__ import annotations

from solo.objects.coordination.alarm_queue import AlarmQueue, Wakeups
from solo.objects.coordination.keys import Keys
from solo.objects.coordination.redis_clients import sync_client

WAKE_WAIT_S = 10.0  # how long a wait expecting a wake-up may take at most (the message comes at once)


class ScriptedPubSub:
    """Answers get_message with the messages given, then None; records the timeouts asked."""

    def __init__(self, *messages: dict) -> None:
        self.messages = list(messages)
        self.timeouts: list[float] = []

    def get_message(self, timeout: float) -> dict | None:
        self.timeouts.append(timeout)
        return self.messages.pop(0) if self.messages else None

    def close(self) -> None:
        pass


def waiting_on(pubsub: ScriptedPubSub) -> Wakeups:
    wakeups = Wakeups(None, Keys("p"))  # type: ignore[arg-type]  # never reaches Redis here
    wakeups._pubsub = pubsub  # type: ignore[assignment]
    return wakeups


def test_a_resubscription_counts_as_a_wake_up_since_wake_ups_may_have_been_lost_meanwhile():
    # redis-py subscribes again by itself after a dropped connection; Redis confirms it.
    wakeups = waiting_on(ScriptedPubSub({"type": "subscribe", "channel": b"p:scheduler:wake", "data": 1}))
    assert wakeups.wait(0.0)


def test_every_wake_up_waiting_is_taken_by_one_wait_and_a_pong_is_none():
    pubsub = ScriptedPubSub(
        {"type": "pong", "data": b""},  # the health check's answer
        {"type": "message", "data": b"1"},
        {"type": "message", "data": b"2"},
    )
    assert waiting_on(pubsub).wait(5.0)
    assert pubsub.messages == [] and pubsub.timeouts[-1] == 0.0  # after the first, none is waited for
    assert not waiting_on(ScriptedPubSub({"type": "pong", "data": b""})).wait(0.0)


def test_solo_devs_embedded_redis_carries_a_wake_up_from_an_announcement(embedded_url):
    client = sync_client(embedded_url)
    keys = Keys("dev")
    queue = AlarmQueue(client, keys, 60_000)
    wakeups = Wakeups(client, keys)
    wakeups.listen()
    try:
        queue.due_and_next(1_000, 10, 2_000, 10_000)  # a pass: looks next at 2,000 at the latest
        assert not queue.announce("o", "C", "n", [("later", 3_000)], 1_000)
        assert queue.announce("o", "C", "n", [("sooner", 1_500)], 1_000)
        assert wakeups.wait(WAKE_WAIT_S)
    finally:
        wakeups.close()
        client.close()
