"""Conversation over real WebSockets: history on join, broadcast, typing, presence, edits, deletes, paging,
and a chat that goes on across kill -9 of every worker."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.examples.conftest import CallFailed

BOUND_S = 30  # a bound on waiting, not a timing


def url(solo, conversation: str, user: str) -> str:
    return f"{solo.url.replace('http://', 'ws://')}/v1/objects/Conversation/{conversation}/ws?user={user}"


async def next_of(ws, kind: str) -> dict:
    """The next event of this type (others, such as presence, are skipped)."""
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), BOUND_S))
        if event["type"] == kind:
            return event


async def presence_until(ws, users: list[str]) -> None:
    while (await next_of(ws, "presence"))["users"] != users:
        pass


def test_a_chat_with_history_presence_typing_edits_and_deletes(solo, api, run_id):
    room = f"support-{run_id}"
    api.call(f"Conversation/{room}", "post", user="bot", text="welcome!")

    async def scenario():
        async with websockets.connect(url(solo, room, "alice")) as alice:
            history = await next_of(alice, "history")
            assert [m["text"] for m in history["messages"]] == ["welcome!"]
            async with websockets.connect(url(solo, room, "bob")) as bob:
                await presence_until(alice, ["alice", "bob"])
                await bob.send(json.dumps({"type": "typing"}))
                assert (await next_of(alice, "typing"))["user"] == "bob"
                await bob.send(json.dumps({"type": "message", "text": "hi alice"}))
                sent = (await next_of(alice, "message"))["message"]
                assert (sent["user"], sent["text"]) == ("bob", "hi alice")
                await alice.send(json.dumps({"type": "edit", "id": sent["id"], "text": "mine now"}))
                assert "author" in (await next_of(alice, "error"))["message"]
                await bob.send(json.dumps({"type": "edit", "id": sent["id"], "text": "hi, alice"}))
                assert (await next_of(alice, "edited"))["message"]["text"] == "hi, alice"
                await bob.send(json.dumps({"type": "delete", "id": sent["id"]}))
                assert (await next_of(alice, "deleted"))["id"] == sent["id"]
                await alice.send(json.dumps({"type": "read", "id": sent["id"]}))
                assert sorted(await asyncio.to_thread(api.call, f"Conversation/{room}", "presence")) == ["alice", "bob"]
            await presence_until(alice, ["alice"])
        return sent["id"]

    deleted = asyncio.run(scenario())
    assert [m["text"] for m in api.call(f"Conversation/{room}", "history")["messages"]] == ["welcome!"]
    assert api.call(f"Conversation/{room}", "read_receipts") == {"alice": deleted}


def test_history_pages_back_through_the_messages(api, run_id):
    room = f"paged-{run_id}"
    for i in range(7):
        api.call(f"Conversation/{room}", "post", user="u", text=f"m{i}")
    first = api.call(f"Conversation/{room}", "history", limit=3)
    second = api.call(f"Conversation/{room}", "history", before_id=first["next"], limit=3)
    assert [m["text"] for m in first["messages"]] == ["m4", "m5", "m6"]
    assert [m["text"] for m in second["messages"]] == ["m1", "m2", "m3"]
    # A limit below one is one; an empty room has no next page (the fuzz found an IndexError here)
    assert [m["text"] for m in api.call(f"Conversation/{room}", "history", limit=0)["messages"]] == ["m6"]
    assert api.call(f"Conversation/empty-{run_id}", "history", limit=0) == {"messages": [], "next": None}


def test_joining_without_a_user_is_refused(solo, run_id):
    async def scenario():
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(url(solo, f"r-{run_id}", "")):
                pass
        assert refused.value.response.status_code == 400

    asyncio.run(scenario())


def test_a_chat_goes_on_across_kill_9_of_every_worker(solo, api, run_id):
    room = f"resilient-{run_id}"

    async def scenario():
        async with (
            websockets.connect(url(solo, room, "alice")) as alice,
            websockets.connect(url(solo, room, "bob")) as bob,
        ):
            await alice.send(json.dumps({"type": "message", "text": "before"}))
            assert (await next_of(bob, "message"))["message"]["text"] == "before"
            await asyncio.to_thread(solo.restart_workers)
            await alice.send(json.dumps({"type": "message", "text": "after"}))
            assert (await next_of(bob, "message"))["message"]["text"] == "after"
            assert (await next_of(alice, "message"))["message"]["text"] == "before"
            assert (await next_of(alice, "message"))["message"]["text"] == "after"

    asyncio.run(scenario())
    texts = [m["text"] for m in api.call(f"Conversation/{room}", "history")["messages"]]
    assert texts == ["before", "after"]


def test_a_post_from_outside_must_be_text(api, run_id):
    with pytest.raises(CallFailed) as failed:
        api.call(f"Conversation/x-{run_id}", "post", user="u", text="")
    assert failed.value.status == 400
