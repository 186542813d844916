"""The API's group enqueue (api/group_enqueue.py): one turn's enqueues in one round trip, each its own answer."""

import asyncio

import pytest

from solo.api.group_enqueue import GroupEnqueue
from solo.objects.calls import Outcome
from solo.objects.coordination.keys import Keys
from solo.objects.coordination.mailbox import AsyncMailbox, MailboxConfig
from solo.objects.errors import MailboxFull
from tests.contract.test_mailbox_and_leases import GRACE_MS, mailbox_ids, make_call, new_object


def group_enqueue(client, key_prefix: str, max_queued: int = 0) -> GroupEnqueue:
    config = MailboxConfig(Keys(key_prefix), 3600, GRACE_MS, max_queued=max_queued, compare_requests=True)
    return GroupEnqueue(client, AsyncMailbox(client, config))


def test_the_enqueues_of_one_turn_go_in_one_round_trip_in_order_each_with_its_decision(
    async_redis_client, redis_client, key_prefix
):
    oid = new_object()
    calls = [make_call(oid, by=n) for n in range(5)]

    async def enqueue_all():
        enqueues = group_enqueue(async_redis_client, key_prefix)
        decisions = await asyncio.gather(*(enqueues.enqueue(c) for c in calls))
        lone = await enqueues.enqueue(make_call(new_object()))
        return enqueues, decisions, lone

    enqueues, decisions, lone = asyncio.run(enqueue_all())
    assert [d.decision for d in decisions] == ["dispatch", "pending", "pending", "pending", "pending"]
    assert mailbox_ids(redis_client, Keys(key_prefix), oid) == [c.call_id for c in calls]
    assert lone.decision == "dispatch"
    assert (enqueues.groups, enqueues.grouped) == (2, 6)  # the five together, then the lone one


def test_a_refusal_in_a_group_is_its_own_requests_only(async_redis_client, redis_client, key_prefix):
    full, other = new_object(), new_object()
    calls = [make_call(full, by=n) for n in range(3)] + [make_call(other)]

    async def enqueue_all():
        enqueues = group_enqueue(async_redis_client, key_prefix, max_queued=2)
        return await asyncio.gather(*(enqueues.enqueue(c) for c in calls), return_exceptions=True)

    answers = asyncio.run(enqueue_all())
    assert [getattr(a, "decision", None) for a in answers] == ["dispatch", "pending", None, "dispatch"]
    assert isinstance(answers[2], MailboxFull)
    assert mailbox_ids(redis_client, Keys(key_prefix), full) == [c.call_id for c in calls[:2]]


def test_a_repeated_call_id_in_a_group_is_queued_once_and_its_recorded_outcome_answered(
    async_redis_client, redis_client, key_prefix
):
    oid = new_object()
    call = make_call(oid, call_id="repeated-" + oid)
    keys = Keys(key_prefix)
    outcome = Outcome.success(call.call_id, 7).payload()
    redis_client.hset(keys.call(call.call_id), mapping={"status": "done", "outcome": outcome})

    async def enqueue_twice():
        enqueues = group_enqueue(async_redis_client, key_prefix)
        return await asyncio.gather(enqueues.enqueue(call), enqueues.enqueue(make_call(oid)))

    done, queued = asyncio.run(enqueue_twice())
    assert done.decision == "done" and done.outcome is not None and done.outcome.result == 7
    assert queued.decision == "dispatch"
    assert len(mailbox_ids(redis_client, keys, oid)) == 1


def test_solo_s_own_client_sends_a_turn_s_enqueues_on_its_short_path(backend, request, redis_client, key_prefix):
    # Given the API's client (objects/coordination/redis_clients.py), on the real Redis
    if backend == "fake":
        pytest.skip("solo's client needs the real Redis")
    from solo.objects.coordination.redis_clients import async_client

    oid = new_object()
    calls = [make_call(oid, by=n) for n in range(5)]

    async def enqueue_all():
        client = async_client(request.getfixturevalue("real_redis_url"))
        enqueues = group_enqueue(client, key_prefix)
        decisions = await asyncio.gather(*(enqueues.enqueue(c) for c in calls))
        again = await asyncio.gather(*(enqueues.enqueue(c) for c in calls[:2]))  # the same ids again
        await client.aclose()
        return enqueues, decisions, again

    enqueues, decisions, again = asyncio.run(enqueue_all())
    assert [d.decision for d in decisions] == ["dispatch", "pending", "pending", "pending", "pending"]
    assert [d.decision for d in again] == ["pending", "pending"]
    assert mailbox_ids(redis_client, Keys(key_prefix), oid) == [c.call_id for c in calls + calls[:2]]
    assert (enqueues.groups, enqueues.grouped) == (2, 7)
