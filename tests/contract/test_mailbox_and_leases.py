"""The mailbox and lease Lua scripts, on fakeredis and on the real Redis (the `redis_client` fixture).

Mailbox entries and lease values themselves, which need no Redis, are in tests/unit/test_mailbox_and_leases.py.
"""

import asyncio
import json
import uuid

import pytest

from solo.objects.calls import Call, Outcome
from solo.objects.coordination.keys import Keys
from solo.objects.coordination.leases import (
    BACKSTOP_MS,
    KEPT,
    LOST,
    RELEASED,
    RELEASED_WITH_CALLS,
    AsyncLeases,
    Leases,
)
from solo.objects.coordination.leases import lease_value as lease_of
from solo.objects.coordination.mailbox import (
    SOCKET_EVENT_DONE_TTL_S,
    SOCKET_EVENT_RECORD_TTL_S,
    AsyncMailbox,
    Mailbox,
    MailboxConfig,
    decode_entry,
    encode_entry,
)
from solo.objects.websockets import SOCKET_METHOD

GRACE_MS = 60_000  # long enough that no test ever sees a grace period end by itself
LEASE_TTL_MS = 30_000


@pytest.fixture
def keys(key_prefix) -> Keys:
    return Keys(key_prefix)


@pytest.fixture
def mailbox(redis_client, keys) -> Mailbox:
    return Mailbox(redis_client, MailboxConfig(keys, call_record_ttl_s=3600, activation_grace_ms=GRACE_MS))


@pytest.fixture
def leases(redis_client, keys) -> Leases:
    return Leases(redis_client, keys, ttl_ms=LEASE_TTL_MS, activation_grace_ms=GRACE_MS)


GENERATION = "g1"  # the heartbeat generation of the workers these tests name


def lease_value(worker_id: str) -> str:
    return lease_of(worker_id, GENERATION)


def beat(redis_client, keys, *worker_ids: str) -> None:
    """Start the named workers' lease heartbeats, as running workers keep them (Leases.beat)."""
    for worker_id in worker_ids:
        redis_client.set(keys.alive(worker_id), GENERATION, px=LEASE_TTL_MS)


def new_object() -> str:
    return uuid.uuid4().hex


def make_call(
    object_id: str, method: str = "increment", *, reply_to: str | None = None, call_id: str | None = None, **args
) -> Call:
    return Call(
        call_id=call_id or uuid.uuid4().hex,
        object_id=object_id,
        class_name="Counter",
        object_name="name-" + object_id[:6],
        method=method,
        args=args,
        reply_to=reply_to,
        enqueued_ms=1,
    )


def queued_and_owned(mailbox, leases, count: int) -> tuple[str, str, list[Call]]:
    """A new object with `count` calls queued and its lease taken by worker "w": (id, lease value, calls)."""
    oid, value = new_object(), lease_value("w")
    calls = [make_call(oid, by=i) for i in range(count)]
    for c in calls:
        mailbox.enqueue(c)
    assert leases.acquire(oid, value)
    return oid, value, calls


def text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def record(redis_client, keys, call_id) -> dict[str, str]:
    return {text(k): text(v) for k, v in redis_client.hgetall(keys.call(call_id)).items()}


def mailbox_ids(redis_client, keys, object_id) -> list[str]:
    return [decode_entry(e).call_id for e in redis_client.lrange(keys.mailbox(object_id), 0, -1)]


def wake_list(redis_client, keys, worker_id) -> list[str]:
    return [text(v) for v in redis_client.lrange(keys.wake(worker_id), 0, -1)]


def live_score(redis_client, keys, object_id) -> float | None:
    return redis_client.zscore(keys.live, object_id)


def redis_now_ms(redis_client) -> int:
    seconds, micros = redis_client.time()
    return seconds * 1000 + micros // 1000


def make_overdue(redis_client, keys, object_id) -> None:
    """Pretend the object's deadline in the live index passed long ago (instead of sleeping)."""
    redis_client.zadd(keys.live, {object_id: 1})


# -- enqueue ------------------------------------------------------------------------


def test_enqueue_without_a_lease_asks_for_one_dispatch_then_reports_pending(mailbox, redis_client, keys):
    oid = new_object()
    first, second, third = make_call(oid), make_call(oid), make_call(oid)

    assert mailbox.enqueue(first).decision == "dispatch"
    assert mailbox.enqueue(second).decision == "pending"
    assert mailbox.enqueue(third).decision == "pending"

    assert mailbox_ids(redis_client, keys, oid) == [first.call_id, second.call_id, third.call_id]
    assert mailbox.depth(oid) == 3
    deadline = live_score(redis_client, keys, oid)
    assert deadline is not None and deadline > redis_now_ms(redis_client)
    for c in (first, second, third):
        assert record(redis_client, keys, c.call_id) == {"status": "queued", "object": oid, "tenant": "default"}
        assert 0 < redis_client.ttl(keys.call(c.call_id)) <= 3600


def test_enqueue_asks_for_a_dispatch_again_once_the_grace_period_is_over(mailbox, redis_client, keys):
    oid = new_object()
    assert mailbox.enqueue(make_call(oid)).decision == "dispatch"
    make_overdue(redis_client, keys, oid)
    assert mailbox.enqueue(make_call(oid)).decision == "dispatch"
    assert mailbox.enqueue(make_call(oid)).decision == "pending"


def test_enqueue_with_a_lease_held_wakes_the_owner_only_when_the_mailbox_was_empty(mailbox, leases, redis_client, keys):
    oid, worker = new_object(), f"worker-{uuid.uuid4().hex[:6]}"
    beat(redis_client, keys, worker)
    value = lease_value(worker)
    assert leases.acquire(oid, value)

    first, second = make_call(oid), make_call(oid)
    assert mailbox.enqueue(first).decision == "owned"
    assert mailbox.enqueue(second).decision == "owned"
    assert wake_list(redis_client, keys, worker) == [oid]
    assert redis_client.pttl(keys.wake(worker)) > 0
    # due when the owner's heartbeat would expire, should it die before the mailbox is empty
    assert redis_now_ms(redis_client) < live_score(redis_client, keys, oid) <= redis_now_ms(redis_client) + LEASE_TTL_MS

    calls = mailbox.claim(oid, value, 10)
    ok = [Outcome.success(c.call_id, 1) for c in calls]
    assert mailbox.complete(oid, value, calls, ok) == 0
    assert live_score(redis_client, keys, oid) is None  # an idle owned object is not in the live index

    assert mailbox.enqueue(make_call(oid)).decision == "owned"
    assert wake_list(redis_client, keys, worker) == [oid, oid]
    assert wake_list(redis_client, keys, "someone-else") == []


def test_enqueue_with_a_lease_whose_holder_stopped_beating_asks_for_a_dispatch(mailbox, leases, redis_client, keys):
    oid, worker = new_object(), f"worker-{uuid.uuid4().hex[:6]}"
    beat(redis_client, keys, worker)
    assert leases.acquire(oid, lease_value(worker))
    redis_client.delete(keys.alive(worker))  # killed: its heartbeat expired
    make_overdue(redis_client, keys, oid)  # and the deadline its takeover set passed

    assert mailbox.enqueue(make_call(oid)).decision == "dispatch"
    assert wake_list(redis_client, keys, worker) == []

    # a process of the same id with another generation (restarted) does not own it either
    redis_client.set(keys.alive(worker), "g2", px=LEASE_TTL_MS)
    make_overdue(redis_client, keys, oid)
    assert mailbox.enqueue(make_call(oid)).decision == "dispatch"


def test_enqueue_of_a_finished_call_id_returns_done_with_its_outcome_and_queues_nothing(
    mailbox, leases, redis_client, keys
):
    oid, value = new_object(), lease_value("w1")
    call = make_call(oid, by=5)
    assert mailbox.enqueue(call).decision == "dispatch"
    assert leases.acquire(oid, value)
    claimed = mailbox.claim(oid, value, 10)
    outcome = Outcome.success(call.call_id, {"value": 5})
    assert mailbox.complete(oid, value, claimed, [outcome]) == 0

    retried = mailbox.enqueue(call)
    assert retried.decision == "done"
    assert retried.outcome == outcome
    assert mailbox.depth(oid) == 0


def test_enqueue_of_a_call_id_that_is_queued_but_unfinished_queues_it_again(mailbox, redis_client, keys):
    """The mailbox may hold a call twice; the object's own call records run it once (test_instance)."""
    oid = new_object()
    call = make_call(oid)
    mailbox.enqueue(call)
    again = mailbox.enqueue(call)
    assert again.decision == "pending" and again.outcome is None
    assert mailbox_ids(redis_client, keys, oid) == [call.call_id, call.call_id]
    assert record(redis_client, keys, call.call_id)["status"] == "queued"


# -- claim -------------------------------------------------------------------------


def test_claim_with_a_lease_that_is_not_ours_returns_none_and_changes_nothing(mailbox, leases, redis_client, keys):
    oid = new_object()
    call = make_call(oid)
    mailbox.enqueue(call)
    assert mailbox.claim(oid, lease_value("nobody"), 10) is None  # no lease at all

    assert leases.acquire(oid, lease_value("owner"))
    assert mailbox.claim(oid, lease_value("owner"), 10) is None  # same worker name, other token
    assert mailbox.claim(oid, lease_value("intruder"), 10) is None
    assert record(redis_client, keys, call.call_id)["status"] == "queued"
    assert mailbox.depth(oid) == 1


def test_claim_returns_calls_in_order_up_to_the_batch_size_and_marks_them_running(mailbox, leases, redis_client, keys):
    oid, value, calls = queued_and_owned(mailbox, leases, 5)

    claimed = mailbox.claim(oid, value, 3)
    assert claimed == calls[:3]
    assert [record(redis_client, keys, c.call_id)["status"] for c in calls] == ["running"] * 3 + ["queued"] * 2
    assert mailbox.depth(oid) == 5  # claimed calls stay until their batch completes

    mailbox.hand_back(claimed)  # the batch failed and its worker lives on
    assert mailbox.claim(oid, value, 3) == calls[:3]  # a retry sees the same head
    mailbox.hand_back(calls[:3])
    everything = mailbox.claim(oid, value, 100)
    assert everything == calls and [c.crashes for c in everything] == [0] * 5  # handed back: no crash


def test_a_call_claimed_again_without_completion_or_hand_back_counts_a_crash_and_is_claimed_alone(
    mailbox, leases, redis_client, keys
):
    # Given: a batch claimed by a worker that then died (never completed, never handed back)
    oid, value, calls = queued_and_owned(mailbox, leases, 4)
    assert [c.crashes for c in mailbox.claim(oid, value, 10)] == [0, 0, 0, 0]

    # When: the next owner claims: the head comes alone, with one crash counted
    (head,) = mailbox.claim(oid, value, 10)
    assert head == calls[0] and head.crashes == 1
    (again,) = mailbox.claim(oid, value, 10)
    assert again.crashes == 2
    assert record(redis_client, keys, calls[0].call_id)["crashes"] == "2"

    # Then: once the head completes, the others (claimed once before) come one by one too
    assert mailbox.complete(oid, value, [head], [Outcome.success(head.call_id, 1)]) == 3
    (second,) = mailbox.claim(oid, value, 10)
    assert second == calls[1] and second.crashes == 1


def test_a_call_sent_again_while_queued_is_not_counted_as_a_crash_when_its_copies_are_claimed_together(
    mailbox, leases, redis_client, keys
):
    # Given: a call sent three times under its key while it waited (its worker could not ship, say)
    oid, value = new_object(), lease_value("w")
    call, other = make_call(oid), make_call(oid, by=2)
    for c in (call, call, other, call):
        mailbox.enqueue(c)
    assert leases.acquire(oid, value)

    # When: batches of its copies are claimed, fail and are handed back, again and again
    for _ in range(5):
        claimed = mailbox.claim(oid, value, 10)
        assert [c.call_id for c in claimed] == [call.call_id, call.call_id, other.call_id, call.call_id]
        # Then: no copy counts as a crash of another (the worker lived and handed the batch back)
        assert [c.crashes for c in claimed] == [0, 0, 0, 0]
        mailbox.hand_back(claimed)
    assert record(redis_client, keys, call.call_id).get("crashes", "0") == "0"

    # and a worker that dies holding them counts one crash for the call, however many copies
    mailbox.claim(oid, value, 10)
    (head,) = mailbox.claim(oid, value, 10)
    assert head.call_id == call.call_id and head.crashes == 1


def test_complete_and_claim_hands_back_the_next_batch_claimed_and_nothing_once_the_mailbox_is_empty(
    mailbox, leases, redis_client, keys
):
    # Given: five calls queued, the first two claimed
    oid, value, calls = queued_and_owned(mailbox, leases, 5)
    first = mailbox.claim(oid, value, 2)
    assert first == calls[:2]

    # When: the batch completes, claiming the next one in the same script
    left, second = mailbox.complete_and_claim(oid, value, first, [Outcome.success(c.call_id, 1) for c in first], 2)

    # Then: the outcomes are published, and the next batch is claimed exactly as claim would have
    assert left == 3 and second == calls[2:4] and [c.crashes for c in second] == [0, 0]
    assert [record(redis_client, keys, c.call_id)["status"] for c in calls] == ["done"] * 2 + ["running"] * 2 + [
        "queued"
    ]
    left, third = mailbox.complete_and_claim(oid, value, second, [Outcome.success(c.call_id, 1) for c in second], 2)
    assert left == 1 and third == calls[4:]
    assert mailbox.complete_and_claim(oid, value, third, [Outcome.success(calls[4].call_id, 1)], 2) == (0, [])
    assert mailbox.depth(oid) == 0
    assert redis_client.zscore(keys.live, oid) is None  # emptied: out of the live index, as complete does


def test_complete_and_claim_of_a_lost_lease_publishes_and_claims_nothing(mailbox, leases, redis_client, keys):
    oid, value, calls = queued_and_owned(mailbox, leases, 3)
    (head,) = mailbox.claim(oid, value, 1)

    assert mailbox.complete_and_claim(oid, lease_value("other"), [head], [Outcome.success(head.call_id, 1)], 2) == (
        -1,
        [],
    )
    assert mailbox.depth(oid) == 3
    assert [record(redis_client, keys, c.call_id)["status"] for c in calls] == ["running", "queued", "queued"]


def test_a_batch_claimed_by_complete_is_handed_back_like_a_claimed_one_and_counts_a_crash_if_its_worker_dies(
    mailbox, leases, redis_client, keys
):
    # Given: a batch claimed by the previous batch's complete
    oid, value, calls = queued_and_owned(mailbox, leases, 4)
    (head,) = mailbox.claim(oid, value, 1)
    left, batch = mailbox.complete_and_claim(oid, value, [head], [Outcome.success(head.call_id, 1)], 10)
    assert left == 3 and batch == calls[1:]

    # When: its worker lives and drops the object, handing it back: no crash, claimed again
    mailbox.hand_back(batch)
    (again,) = mailbox.claim(oid, value, 1)
    assert again == calls[1] and again.crashes == 0

    # When: a worker dies holding such a batch (complete claimed it; nothing ran, nothing handed back)
    left, batch = mailbox.complete_and_claim(oid, value, [again], [Outcome.success(again.call_id, 1)], 10)
    assert left == 2 and batch == calls[2:] and [c.crashes for c in batch] == [0, 0]
    successor = lease_value("w2")
    redis_client.delete(keys.lease(oid))  # its lease lapsed: another worker takes the object
    assert leases.acquire(oid, successor)

    # Then: every call is still queued, the head is claimed alone with one crash, then the next
    (crashed,) = mailbox.claim(oid, successor, 10)
    assert crashed == calls[2] and crashed.crashes == 1
    left, rest = mailbox.complete_and_claim(oid, successor, [crashed], [Outcome.success(crashed.call_id, 1)], 10)
    assert left == 1 and rest == calls[3:] and rest[0].crashes == 1  # it was in the dead worker's batch too


def test_claim_many_claims_each_objects_batch_as_claim_would_for_its_lease_holder_only(
    mailbox, leases, redis_client, keys
):
    # Given: three objects held by this worker (one with a call whose worker died), one held by another
    value, other = lease_value("w"), lease_value("w2")
    busy, crashed, empty, foreign = (new_object() for _ in range(4))
    calls = {oid: [make_call(oid, by=i) for i in range(3)] for oid in (busy, crashed, foreign)}
    for batch in calls.values():
        for c in batch:
            mailbox.enqueue(c)
    for oid in (busy, crashed, empty):
        assert leases.acquire(oid, value)
    assert leases.acquire(foreign, other)
    mailbox.claim(crashed, value, 10)  # claimed, then neither completed nor handed back

    # When: one round trip claims for all four
    claimed = mailbox.claim_many([(busy, value), (crashed, value), (empty, value), (foreign, value)], 2)

    # Then: each as claim would answer it: a batch, the crashed head alone, nothing, not ours
    assert claimed[0] == calls[busy][:2] and [c.crashes for c in claimed[0]] == [0, 0]
    assert claimed[1] == calls[crashed][:1] and claimed[1][0].crashes == 1
    assert claimed[2] == [] and claimed[3] is None
    assert [record(redis_client, keys, c.call_id)["status"] for c in calls[foreign]] == ["queued"] * 3
    assert [record(redis_client, keys, c.call_id)["status"] for c in calls[busy]] == ["running"] * 2 + ["queued"]
    assert mailbox.claim_many([], 2) == []


def test_claim_on_an_empty_mailbox_returns_an_empty_list(mailbox, leases):
    oid, value = new_object(), lease_value("w")
    assert leases.acquire(oid, value)
    assert mailbox.claim(oid, value, 10) == []


# -- complete -----------------------------------------------------------------------


def test_complete_publishes_each_outcome_pops_exactly_the_batch_and_returns_what_is_left(
    mailbox, leases, redis_client, keys
):
    oid, value = new_object(), lease_value("w")
    reply = keys.replies(f"api-{uuid.uuid4().hex[:6]}")
    ok_call = make_call(oid, reply_to=reply)
    failing_call = make_call(oid, reply_to=reply)
    silent_call = make_call(oid)  # nobody waits: no reply list
    later = make_call(oid)
    for c in (ok_call, failing_call, silent_call, later):
        mailbox.enqueue(c)
    assert leases.acquire(oid, value)

    batch = mailbox.claim(oid, value, 3)
    outcomes = [
        Outcome.success(ok_call.call_id, [1, 2]),
        Outcome.failure(failing_call.call_id, "user_error", "nope", status=409, type_="UserError"),
        Outcome.success(silent_call.call_id, None),
    ]
    assert mailbox.complete(oid, value, batch, outcomes) == 1

    assert mailbox_ids(redis_client, keys, oid) == [later.call_id]
    replies = [Outcome.from_payload(r) for r in redis_client.lrange(reply, 0, -1)]
    assert replies == outcomes[:2]
    assert 0 < redis_client.pttl(reply) <= mailbox.config.reply_ttl_ms
    assert record(redis_client, keys, ok_call.call_id)["status"] == "done"
    assert record(redis_client, keys, failing_call.call_id)["status"] == "failed"
    assert record(redis_client, keys, silent_call.call_id)["status"] == "done"
    for c, o in zip(batch, outcomes):
        assert json.loads(record(redis_client, keys, c.call_id)["outcome"]) == json.loads(o.payload())
        assert 0 < redis_client.ttl(keys.call(c.call_id)) <= 3600
    assert record(redis_client, keys, later.call_id)["status"] == "queued"


def test_a_socket_events_record_is_kept_an_hour_while_queued_a_minute_once_done_and_a_calls_as_configured(
    redis_client, keys, leases
):
    mailbox = Mailbox(redis_client, MailboxConfig(keys, call_record_ttl_s=86_400, activation_grace_ms=GRACE_MS))
    oid, value = new_object(), lease_value("w")
    event, call = make_call(oid, SOCKET_METHOD), make_call(oid)
    connect = make_call(oid, SOCKET_METHOD, reply_to=keys.replies("api"))  # a connect: its gateway waits
    for c in (event, call, connect):
        mailbox.enqueue(c)
    assert 3500 < redis_client.ttl(keys.call(event.call_id)) <= SOCKET_EVENT_RECORD_TTL_S
    assert leases.acquire(oid, value)
    batch = mailbox.claim(oid, value, 10)
    mailbox.complete(oid, value, batch, [Outcome.success(c.call_id, None) for c in batch])
    assert 0 < redis_client.ttl(keys.call(event.call_id)) <= SOCKET_EVENT_DONE_TTL_S
    assert mailbox.enqueue(event).decision == "done"  # a retried enqueue is still absorbed
    assert 3500 < redis_client.ttl(keys.call(connect.call_id)) <= SOCKET_EVENT_RECORD_TTL_S
    assert redis_client.ttl(keys.call(call.call_id)) > SOCKET_EVENT_RECORD_TTL_S


def test_complete_with_a_lease_that_is_not_ours_returns_minus_one_and_publishes_nothing(
    mailbox, leases, redis_client, keys
):
    oid, value = new_object(), lease_value("w")
    reply = keys.replies("api")
    call = make_call(oid, reply_to=reply)
    mailbox.enqueue(call)
    assert leases.acquire(oid, value)
    batch = mailbox.claim(oid, value, 10)

    assert mailbox.complete(oid, lease_value("w"), batch, [Outcome.success(call.call_id, 1)]) == -1
    assert mailbox_ids(redis_client, keys, oid) == [call.call_id]
    assert redis_client.llen(reply) == 0
    assert record(redis_client, keys, call.call_id)["status"] == "running"
    assert "outcome" not in record(redis_client, keys, call.call_id)


# -- leases ------------------------------------------------------------------------------


def test_acquire_is_exclusive_while_the_holder_beats_and_indexes_the_object_as_live(leases, redis_client, keys):
    oid = new_object()
    beat(redis_client, keys, "first", "second")
    first, second = lease_value("first"), lease_value("second")
    assert leases.acquire(oid, first) is True
    assert leases.acquire(oid, second) is False
    assert leases.acquire(oid, first) is False  # not re-entrant either
    assert leases.owner(oid) == "first"
    assert LEASE_TTL_MS < redis_client.pttl(keys.lease(oid)) <= BACKSTOP_MS  # no TTL of its own but the backstop
    assert live_score(redis_client, keys, oid) > redis_now_ms(redis_client)
    assert leases.owner(new_object()) is None


def test_a_lease_is_free_once_its_holders_heartbeat_stops(leases, redis_client, keys):
    oid = new_object()
    beat(redis_client, keys, "first", "second")
    assert leases.acquire(oid, lease_value("first"))
    redis_client.delete(keys.alive("first"))  # its heartbeat expired: killed, or paused past the TTL
    assert leases.owner(oid) is None
    taken = lease_value("second")
    assert leases.acquire(oid, taken) is True
    assert leases.owner(oid) == "second"
    assert text(redis_client.get(keys.lease(oid))) == taken


def test_acquire_of_an_object_a_live_holder_keeps_wakes_that_holder_if_calls_are_queued(
    mailbox, leases, redis_client, keys
):
    # Given: an activation was sent while the holder's heartbeat had lapsed, and the holder came back
    oid = new_object()
    beat(redis_client, keys, "holder", "other")
    assert leases.acquire(oid, lease_value("holder"))
    assert leases.acquire(oid, lease_value("other")) is False
    assert wake_list(redis_client, keys, "holder") == []  # nothing queued: nothing to wake it for
    redis_client.rpush(keys.mailbox(oid), encode_entry(make_call(oid)))

    # When: another worker tries to take it; Then: the holder is woken to serve the calls
    assert leases.acquire(oid, lease_value("other")) is False
    assert wake_list(redis_client, keys, "holder") == [oid]


def test_beat_keeps_a_workers_leases_alive_and_says_when_it_had_lapsed(leases, redis_client, keys):
    assert leases.beat("me", GENERATION) is False  # new: nothing to check yet
    assert leases.beat("me", GENERATION) is True
    assert 0 < redis_client.pttl(keys.alive("me")) <= LEASE_TTL_MS
    redis_client.delete(keys.alive("me"))  # paused past the TTL, or Redis restarted
    assert leases.beat("me", GENERATION) is False
    assert leases.beat("me", "another-generation") is False  # the same id in a new process

    leases.stop_beating("me", GENERATION)  # not its generation any more: left alone
    assert redis_client.exists(keys.alive("me"))
    leases.stop_beating("me", "another-generation")
    assert not redis_client.exists(keys.alive("me"))


def test_lost_reports_the_leases_taken_or_gone_among_those_held(leases, redis_client, keys):
    kept, stolen, expired = new_object(), new_object(), new_object()
    mine = {oid: lease_value("me") for oid in (kept, stolen, expired)}
    for oid in (kept, stolen, expired):
        assert leases.acquire(oid, mine[oid])
    redis_client.set(keys.lease(stolen), lease_value("thief"))
    redis_client.delete(keys.lease(expired))

    assert sorted(leases.lost(list(mine.items()))) == sorted([stolen, expired])
    assert leases.lost([]) == []


def test_release_idle_keeps_the_lease_while_calls_are_queued_and_releases_when_empty(
    mailbox, leases, redis_client, keys
):
    beat(redis_client, keys, "w")
    oid, value = new_object(), lease_value("w")
    assert leases.acquire(oid, value)
    call = make_call(oid)
    mailbox.enqueue(call)

    assert leases.release(oid, value, "idle") == KEPT
    assert leases.owner(oid) == "w"

    batch = mailbox.claim(oid, value, 10)
    assert mailbox.complete(oid, value, batch, [Outcome.success(call.call_id, 1)]) == 0
    assert leases.release(oid, value, "idle") == RELEASED
    assert leases.owner(oid) is None
    assert live_score(redis_client, keys, oid) is None
    assert leases.release(oid, value, "idle") == LOST


def test_release_drain_gives_up_the_lease_anyway_and_makes_queued_calls_due_now(mailbox, leases, redis_client, keys):
    oid, value = new_object(), lease_value("w")
    assert leases.acquire(oid, value)
    mailbox.enqueue(make_call(oid))

    assert leases.release(oid, value, "drain") == RELEASED_WITH_CALLS
    assert leases.owner(oid) is None
    assert mailbox.depth(oid) == 1
    assert live_score(redis_client, keys, oid) == 0
    assert oid in leases.overdue()

    empty, empty_value = new_object(), lease_value("w")
    assert leases.acquire(empty, empty_value)
    assert leases.release(empty, empty_value, "drain") == RELEASED
    assert live_score(redis_client, keys, empty) is None


def test_release_with_a_lease_that_is_not_ours_changes_nothing(leases, redis_client, keys):
    beat(redis_client, keys, "w")
    oid, value = new_object(), lease_value("w")
    assert leases.acquire(oid, value)
    for mode in ("idle", "drain"):
        assert leases.release(oid, lease_value("w"), mode) == LOST
    assert leases.owner(oid) == "w"
    assert live_score(redis_client, keys, oid) is not None


def test_after_release_the_next_enqueue_dispatches_again(mailbox, leases):
    oid, value = new_object(), lease_value("w")
    assert leases.acquire(oid, value)
    assert leases.release(oid, value, "idle") == RELEASED
    assert mailbox.enqueue(make_call(oid)).decision == "dispatch"


# -- redispatch ------------------------------------------------------------------------------


def test_redispatch_wins_once_per_grace_period_for_an_overdue_object_with_calls_and_no_lease(
    mailbox, leases, redis_client, keys
):
    oid = new_object()
    assert mailbox.enqueue(make_call(oid)).decision == "dispatch"
    assert oid not in leases.overdue()
    assert leases.claim_redispatch(oid) is False  # its activation is not late yet

    make_overdue(redis_client, keys, oid)
    assert oid in leases.overdue()
    assert leases.claim_redispatch(oid) is True
    assert leases.claim_redispatch(oid) is False  # another sweeper loses
    assert oid not in leases.overdue()
    assert live_score(redis_client, keys, oid) > redis_now_ms(redis_client)
    assert mailbox.enqueue(make_call(oid)).decision == "pending"  # callers also see it as on its way


def test_redispatch_removes_an_overdue_object_with_an_empty_mailbox_from_the_live_index(leases, redis_client, keys):
    oid = new_object()
    make_overdue(redis_client, keys, oid)
    assert oid in leases.overdue()
    assert leases.claim_redispatch(oid) is False
    assert live_score(redis_client, keys, oid) is None
    assert oid not in leases.overdue()


def test_redispatch_leaves_an_object_whose_lease_is_alive_to_its_owner_and_wakes_it(
    mailbox, leases, redis_client, keys
):
    beat(redis_client, keys, "w")
    oid, value = new_object(), lease_value("w")
    assert leases.acquire(oid, value)
    mailbox.enqueue(make_call(oid))
    redis_client.delete(keys.wake("w"))  # the wake-up went missing
    make_overdue(redis_client, keys, oid)

    assert leases.claim_redispatch(oid) is False
    # due again when the owner's heartbeat would expire
    assert redis_now_ms(redis_client) < live_score(redis_client, keys, oid) <= redis_now_ms(redis_client) + LEASE_TTL_MS
    assert wake_list(redis_client, keys, "w") == [oid]
    assert leases.owner(oid) == "w"


def test_redispatch_sends_an_activation_for_an_object_whose_holder_stopped_beating(mailbox, leases, redis_client, keys):
    beat(redis_client, keys, "w")
    busy, idle = new_object(), new_object()
    for oid in (busy, idle):
        assert leases.acquire(oid, lease_value("w"))
        make_overdue(redis_client, keys, oid)
    mailbox.enqueue(make_call(busy))
    make_overdue(redis_client, keys, busy)
    redis_client.delete(keys.alive("w"))  # killed

    assert leases.claim_redispatch(busy) is True
    assert leases.claim_redispatch(idle) is False
    assert live_score(redis_client, keys, idle) is None
    assert not redis_client.exists(keys.lease(idle))  # a dead holder's lease with nothing to run goes


def test_redispatch_of_an_object_not_in_the_live_index_does_nothing(mailbox, leases, redis_client, keys):
    oid = new_object()
    redis_client.rpush(keys.mailbox(oid), encode_entry(make_call(oid)))
    assert leases.claim_redispatch(oid) is False
    assert live_score(redis_client, keys, oid) is None


def test_overdue_lists_only_objects_past_their_deadline_up_to_a_limit(leases, redis_client, keys):
    late = [new_object() for _ in range(3)]
    for oid in late:
        make_overdue(redis_client, keys, oid)
    on_time = new_object()
    assert leases.acquire(on_time, lease_value("w"))

    assert sorted(leases.overdue()) == sorted(late)
    assert len(leases.overdue(limit=2)) == 2


def test_release_backoff_gives_up_the_lease_but_makes_queued_calls_due_only_after_the_grace_period(
    mailbox, leases, redis_client, keys
):
    oid, value = new_object(), lease_value("w")
    assert leases.acquire(oid, value)
    mailbox.enqueue(make_call(oid))

    assert leases.release(oid, value, "backoff") == RELEASED_WITH_CALLS
    assert leases.owner(oid) is None
    assert mailbox.depth(oid) == 1
    assert oid not in leases.overdue()
    assert live_score(redis_client, keys, oid) > 0


def test_purge_fails_queued_calls_but_keeps_the_batch_an_owner_is_running(
    mailbox, leases, redis_client, async_redis_client, keys
):
    # Given: four calls, the first two claimed by the owner, the third with a waiting caller
    oid, value = new_object(), lease_value("w")
    calls = [make_call(oid, by=i) for i in range(4)]
    calls[2] = make_call(oid, reply_to=keys.replies("api-1"), by=2)
    for c in calls:
        mailbox.enqueue(c)
    assert leases.acquire(oid, value)
    assert mailbox.claim(oid, value, 2) == calls[:2]

    # When: an operator purges the mailbox
    purged = asyncio.run(AsyncMailbox(async_redis_client, mailbox.config).purge(oid, "by the test"))

    # Then: the queued two failed with `purged`, the waiting caller was told, the claimed batch stays
    assert purged == 2
    assert [record(redis_client, keys, c.call_id)["status"] for c in calls] == ["running"] * 2 + ["failed"] * 2
    (told,) = redis_client.lrange(keys.replies("api-1"), 0, -1)
    assert Outcome.from_payload(told).error == {"code": "purged", "message": "by the test"}
    assert mailbox.complete(oid, value, calls[:2], [Outcome.success(c.call_id, 0) for c in calls[:2]]) == 0


def test_the_apis_owner_reads_name_only_holders_whose_heartbeat_beats(leases, redis_client, async_redis_client, keys):
    beat(redis_client, keys, "alive", "dead")
    held, orphaned, free = new_object(), new_object(), new_object()
    assert leases.acquire(held, lease_value("alive"))
    assert leases.acquire(orphaned, lease_value("dead"))
    redis_client.delete(keys.alive("dead"))

    reader = AsyncLeases(async_redis_client, keys)

    async def read() -> tuple:
        return await reader.owners([held, orphaned, free]), await reader.owner(held), await reader.owners([])

    assert asyncio.run(read()) == (["alive", None, None], "alive", [])
    assert [leases.owner(oid) for oid in (held, orphaned, free)] == ["alive", None, None]


def test_acquire_and_claim_takes_free_leases_and_claims_each_first_batch_in_one_round_trip(
    mailbox, leases, redis_client, keys
):
    # Given three objects with calls queued: one free, one whose holder stopped beating, one held by a live worker
    free, orphaned, held = new_object(), new_object(), new_object()
    calls = {oid: [make_call(oid, by=i) for i in range(3)] for oid in (free, orphaned, held)}
    for queued in calls.values():
        for c in queued:
            mailbox.enqueue(c)
    dead, live, me = (f"worker-{uuid.uuid4().hex[:6]}" for _ in range(3))
    beat(redis_client, keys, dead, live, me)
    assert leases.acquire(orphaned, lease_value(dead))
    holder = lease_value(live)
    assert leases.acquire(held, holder)
    redis_client.delete(keys.alive(dead))  # killed: its heartbeat expired

    # When one worker asks for all three
    mine = {oid: lease_value(me) for oid in (free, orphaned, held)}
    taken = mailbox.acquire_and_claim(list(mine.items()), batch_size=2, ttl_ms=LEASE_TTL_MS)

    # Then it holds the two not held by a live worker, each with its first batch claimed (as claim.lua)
    assert [None if t is None else [c.call_id for c in t] for t in taken] == [
        [c.call_id for c in calls[free][:2]],
        [c.call_id for c in calls[orphaned][:2]],
        None,
    ]
    for oid in (free, orphaned):
        assert text(redis_client.get(keys.lease(oid))) == mine[oid]
        assert 0 < redis_client.pttl(keys.lease(oid)) <= BACKSTOP_MS
        assert live_score(redis_client, keys, oid) is not None  # due again if its owner dies
        assert [record(redis_client, keys, c.call_id)["status"] for c in calls[oid]] == ["running", "running", "queued"]
    # and the live holder keeps its object and is woken for its queued calls, which stay unclaimed
    assert text(redis_client.get(keys.lease(held))) == holder
    assert wake_list(redis_client, keys, live) == [held]
    assert {record(redis_client, keys, c.call_id)["status"] for c in calls[held]} == {"queued"}


def test_acquire_and_claim_of_an_object_with_nothing_queued_takes_its_lease_with_an_empty_batch(
    mailbox, redis_client, keys
):
    oid = new_object()
    value = lease_value("w")
    assert mailbox.acquire_and_claim([(oid, value)], batch_size=8, ttl_ms=LEASE_TTL_MS) == [[]]
    assert text(redis_client.get(keys.lease(oid))) == value
    assert mailbox.acquire_and_claim([], batch_size=8, ttl_ms=LEASE_TTL_MS) == []
