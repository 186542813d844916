"""The API's group enqueue when things go wrong: a failed round trip, a cancelled request, Redis without its scripts."""

import asyncio

import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from solo.api.group_enqueue import GroupEnqueue
from solo.objects.coordination.keys import Keys
from solo.objects.coordination.mailbox import AsyncMailbox, MailboxConfig, decode_entry
from solo.testing.cluster import free_port
from tests.contract.test_mailbox_and_leases import GRACE_MS, make_call, new_object


def fake_client():
    import fakeredis

    return fakeredis.FakeAsyncRedis()


def test_when_the_round_trip_fails_every_request_of_the_group_gets_the_error():
    client = redis.asyncio.Redis(port=free_port(), retry=Retry(NoBackoff(), 0))  # nothing listens there
    config = MailboxConfig(Keys("solo-test-unreachable"), 3600, GRACE_MS)
    calls = [make_call(new_object()) for _ in range(3)]

    async def enqueue_all():
        enqueues = GroupEnqueue(client, AsyncMailbox(client, config))
        try:
            return await asyncio.gather(*(enqueues.enqueue(c) for c in calls), return_exceptions=True)
        finally:
            await client.aclose()

    answers = asyncio.run(enqueue_all())
    assert len(answers) == 3
    for answer in answers:
        assert isinstance(answer, redis.ConnectionError)


def test_a_request_cancelled_while_its_group_is_under_way_leaves_the_others_answered():
    client = fake_client()
    config = MailboxConfig(Keys("solo-test-cancelled"), 3600, GRACE_MS)
    calls = [make_call(new_object()) for _ in range(3)]

    async def enqueue_all():
        enqueues = GroupEnqueue(client, AsyncMailbox(client, config))
        tasks = [asyncio.ensure_future(enqueues.enqueue(c)) for c in calls]
        await asyncio.sleep(0)  # every one is in the group now
        tasks[1].cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    answers = asyncio.run(enqueue_all())
    assert isinstance(answers[1], asyncio.CancelledError)
    assert [answers[0].decision, answers[2].decision] == ["dispatch", "dispatch"]


def test_a_group_sent_after_redis_lost_its_scripts_is_still_enqueued_in_order():
    client = fake_client()
    config = MailboxConfig(Keys("solo-test-flushed"), 3600, GRACE_MS)
    oid = new_object()
    calls = [make_call(oid, by=n) for n in range(3)]

    async def enqueue_all():
        enqueues = GroupEnqueue(client, AsyncMailbox(client, config))
        await client.script_flush()  # as a Redis restart leaves it
        decisions = await asyncio.gather(*(enqueues.enqueue(c) for c in calls))
        return decisions, await client.lrange(config.keys.mailbox(oid), 0, -1)

    decisions, entries = asyncio.run(enqueue_all())
    assert [d.decision for d in decisions] == ["dispatch", "pending", "pending"]
    assert [decode_entry(e).call_id for e in entries] == [c.call_id for c in calls]
