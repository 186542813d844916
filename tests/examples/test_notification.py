"""Notification over real WebSockets: live delivery to every device, storage while offline, unread counts,
marking read from a device or a call, presence."""

from __future__ import annotations

import asyncio
import json

import websockets

BOUND_S = 30  # a bound on waiting, not a timing


def url(solo, user: str, device: str) -> str:
    return f"{solo.url.replace('http://', 'ws://')}/v1/objects/Notification/{user}/ws?device={device}"


async def next_of(ws, kind: str) -> dict:
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), BOUND_S))
        if event["type"] == kind:
            return event


def test_notifications_are_stored_while_offline_and_pushed_to_every_device_when_online(solo, api, run_id):
    user = f"Notification/ana-{run_id}"
    offline = api.call(user, "notify", payload={"text": "while you were out"})
    assert offline == {"id": 1, "delivered": 0, "unread": 1}

    async def scenario():
        async with (
            websockets.connect(url(solo, f"ana-{run_id}", "phone")) as phone,
            websockets.connect(url(solo, f"ana-{run_id}", "laptop")) as laptop,
        ):
            missed = await next_of(phone, "unread")
            assert missed["count"] == 1 and missed["notifications"][0]["payload"] == {"text": "while you were out"}
            assert await asyncio.to_thread(api.call, user, "presence") == {
                "online": True,
                "devices": ["laptop", "phone"],
            }
            live = await asyncio.to_thread(api.call, user, "notify", payload={"text": "live"}, kind="mention")
            assert live["delivered"] == 2
            for device in (phone, laptop):
                pushed = await next_of(device, "notification")
                assert (pushed["kind"], pushed["payload"]) == ("mention", {"text": "live"})
                assert (await next_of(device, "unread"))["count"] == 2
            await phone.send(json.dumps({"type": "read", "ids": [offline["id"]]}))
            assert (await next_of(laptop, "unread"))["count"] == 1

    asyncio.run(scenario())
    assert api.call(user, "unread_count") == 1
    assert api.call(user, "mark_read") == 1
    assert [n["read"] for n in api.call(user, "recent")] == [True, True]
