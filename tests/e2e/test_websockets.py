"""WebSockets against real processes, with a real client (the `websockets` library).

One system serves the whole module: two API processes (one asks for keys), two workers,
objects evicted after 1 s idle so that every socket here outlives its object's activation.
Each test uses its own Room (tests/objects.py).
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from dataclasses import dataclass

import httpx
import pytest
import redis
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from solo import AsyncClient, Client
from solo.objects.state.keys import KeyStore
from solo.testing.cluster import Cluster
from tests import REPO
from tests.e2e.conftest import history, module_cluster, wait_until

RECEIVE_BOUND_S = 30  # a bound on waiting, not a timing: a healthy system answers in milliseconds


@dataclass
class SocketSystem:
    cluster: Cluster
    url: str  # SOLO_AUTH=off
    keyed_url: str  # SOLO_AUTH=keys
    keys: KeyStore
    env: dict[str, str]


@pytest.fixture(scope="module")
def socket_cluster(real_redis_url, postgres_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sockets")
    objects = "solo.examples,tests.objects"
    with module_cluster(
        real_redis_url, postgres_url, tmp, pythonpath=REPO, SOLO_OBJECTS=objects, SOLO_IDLE_EVICT_S="1"
    ) as (
        cluster,
        engine,
    ):
        cluster.start_worker()
        cluster.start_worker()
        url = cluster.start_api()
        keyed_url = cluster.start_api(SOLO_AUTH="keys")
        yield SocketSystem(cluster, url, keyed_url, KeyStore(engine), cluster.env)


def room() -> str:
    return f"room-{uuid.uuid4().hex[:10]}"


def ws_url(base: str, name: str, query: str = "", cls: str = "Room") -> str:
    return f"{base.replace('http://', 'ws://')}/v1/objects/{cls}/{name}/ws" + (f"?{query}" if query else "")


def rpc(system: SocketSystem, name: str, method: str, **kwargs):
    response = httpx.post(f"{system.url}/v1/objects/Room/{name}/{method}", json=kwargs, timeout=RECEIVE_BOUND_S)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def info(system: SocketSystem, name: str) -> dict:
    return httpx.get(f"{system.url}/v1/objects/Room/{name}", timeout=10).json()


async def recv(ws) -> str | bytes:
    return await asyncio.wait_for(ws.recv(), RECEIVE_BOUND_S)


async def recv_n(ws, n: int) -> list[str | bytes]:
    return [await recv(ws) for _ in range(n)]


def wait_evicted(system: SocketSystem, name: str) -> None:
    wait_until(lambda: not info(system, name)["active"], RECEIVE_BOUND_S, f"{name} to be evicted")


# -- connect, accept, refuse ----------------------------------------------------------------------


def test_a_socket_is_accepted_with_its_tags_and_attachment_and_a_refusal_answers_with_the_handlers_error(
    socket_cluster,
):
    system, name = socket_cluster, room()

    async def scenario():
        async with websockets.connect(ws_url(system.url, name, "user=alice&greet=1")) as alice:
            assert await recv(alice) == "welcome alice"
            (listed,) = await asyncio.to_thread(rpc, system, name, "sockets")
            assert listed["tags"] == ["user:alice"]
            assert listed["attachment"]["user"] == "alice"
            with pytest.raises(InvalidStatus) as refused:
                async with websockets.connect(ws_url(system.url, name, "user=mallory")):
                    pass
            assert refused.value.response.status_code == 403
            assert json.loads(refused.value.response.body)["error"]["code"] == "banned"
            assert len(await asyncio.to_thread(rpc, system, name, "sockets")) == 1

    asyncio.run(scenario())


def test_a_class_without_web_socket_message_refuses_the_upgrade_with_404(socket_cluster):
    async def scenario():
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(ws_url(socket_cluster.url, "c", cls="Counter")):
                pass
        assert refused.value.response.status_code == 404
        assert json.loads(refused.value.response.body)["error"]["code"] == "websockets_not_supported"

    asyncio.run(scenario())


# -- tags, broadcast, calls that send --------------------------------------------------------------


def test_messages_are_broadcast_sent_by_tag_and_sent_by_calls_and_binary_messages_work(socket_cluster):
    system, name = socket_cluster, room()

    async def scenario():
        async with (
            websockets.connect(ws_url(system.url, name, "user=alice")) as alice,
            websockets.connect(ws_url(system.url, name, "user=bob")) as bob,
        ):
            await alice.send("hello")
            assert await recv(alice) == "alice: hello"
            assert await recv(bob) == "alice: hello"
            await bob.send("to alice psst")
            assert await recv(alice) == "bob whispers: psst"
            assert await asyncio.to_thread(rpc, system, name, "announce", text="from a call") == 2
            assert await recv(alice) == "from a call"
            assert await recv(bob) == "from a call"
            await bob.send(b"\x00\x01\x02")
            assert await recv(bob) == b"\x02\x01\x00"
            await alice.send("count")
            assert await recv(alice) == "seen 1"
            await alice.send("count")
            assert await recv(alice) == "seen 2"  # the attachment was stored with the first batch
            await bob.send("bye")  # the object closes bob's socket
            await asyncio.wait_for(bob.wait_closed(), RECEIVE_BOUND_S)
            assert bob.close_code == 4000
        tags = [s["tags"] for s in await asyncio.to_thread(rpc, system, name, "sockets")]
        assert tags == [] or tags == [["user:alice"]]  # alice's close event may still be queued

    asyncio.run(scenario())


def test_each_sockets_messages_arrive_in_order_under_concurrent_senders(socket_cluster):
    system, name = socket_cluster, room()
    users, per_user = ["u0", "u1", "u2"], 40

    async def scenario():
        clients = [await websockets.connect(ws_url(system.url, name, f"user={u}")) for u in users]
        try:

            async def send_all(client, user):
                for i in range(per_user):
                    await client.send(f"{i}")

            await asyncio.gather(*(send_all(c, u) for c, u in zip(clients, users)))
            received = await asyncio.gather(*(recv_n(c, len(users) * per_user) for c in clients))
        finally:
            for c in clients:
                await c.close()
        for got in received:
            for user in users:
                assert [m.split(": ")[1] for m in got if m.startswith(f"{user}:")] == [str(i) for i in range(per_user)]
        # Every client saw the one order in which the object handled them.
        assert received[0] == received[1] == received[2]

    asyncio.run(scenario())


# -- the output gate ------------------------------------------------------------------------------


def test_a_failing_handler_sends_nothing_and_writes_nothing(socket_cluster):
    system, name = socket_cluster, room()

    async def scenario():
        async with websockets.connect(ws_url(system.url, name, "user=alice")) as alice:
            await alice.send("fail now")
            await alice.send("after")
            assert await recv(alice) == "alice: after"  # not "never sent: fail now"
        assert "alice: fail now" not in await asyncio.to_thread(rpc, system, name, "log")

    asyncio.run(scenario())


# -- hibernation ----------------------------------------------------------------------------------


def test_an_object_is_evicted_with_its_sockets_open_and_wakes_with_them_on_the_next_message(socket_cluster):
    system, name = socket_cluster, room()

    async def scenario():
        async with (
            websockets.connect(ws_url(system.url, name, "user=alice")) as alice,
            websockets.connect(ws_url(system.url, name, "user=bob")) as bob,
        ):
            await alice.send("count")
            assert await recv(alice) == "seen 1"
            activations = len(history(system.env, "Room", name))
            await asyncio.to_thread(wait_evicted, system, name)
            await bob.send("after a nap")
            assert await recv(alice) == "bob: after a nap"
            assert await recv(bob) == "bob: after a nap"
            await alice.send("count")
            assert await recv(alice) == "seen 2"  # the attachment came back from the object's state
            assert len(history(system.env, "Room", name)) > activations  # it was hydrated again

    asyncio.run(scenario())


def test_an_auto_response_is_answered_without_waking_the_object(socket_cluster):
    system, name = socket_cluster, room()

    async def scenario():
        async with websockets.connect(ws_url(system.url, name, "user=alice")) as alice:
            await asyncio.to_thread(rpc, system, name, "auto", request="ping", response="pong")
            await asyncio.to_thread(wait_evicted, system, name)
            activations = len(history(system.env, "Room", name))
            for _ in range(3):
                await alice.send("ping")
                assert await recv(alice) == "pong"
            assert not info(system, name)["active"]
            assert len(history(system.env, "Room", name)) == activations
        async with websockets.connect(ws_url(system.url, name, "user=bob")) as bob:  # a new socket knows it too
            await bob.send("ping")
            assert await recv(bob) == "pong"

    asyncio.run(scenario())


# -- limits ---------------------------------------------------------------------------------------


def test_a_message_over_1_mib_closes_its_socket_with_1009_and_the_object_hears_of_it(socket_cluster):
    system, name = socket_cluster, room()

    async def scenario():
        async with websockets.connect(ws_url(system.url, name, "user=alice"), max_size=None) as alice:
            await alice.send(b"x" * 1024 * 1024)  # exactly 1 MiB passes, both ways (echoed reversed)
            assert len(await recv(alice)) == 1024 * 1024
            await alice.send("y" * (1024 * 1024 + 1))
            with pytest.raises(ConnectionClosed):
                await recv(alice)
            assert alice.close_code == 1009

    asyncio.run(scenario())
    log = wait_until(
        lambda: (lines := rpc(system, name, "log")) and any("closed 1009" in line for line in lines) and lines,
        RECEIVE_BOUND_S,
        "the close event",
    )
    assert any(line.startswith("alice: error") for line in log)


def test_an_object_cannot_send_more_than_1_mib_nor_accept_too_many_tags_or_a_large_attachment(socket_cluster):
    system, name = socket_cluster, room()

    async def scenario():
        async with websockets.connect(ws_url(system.url, name, "user=alice")) as alice:
            await alice.send("big")  # the handler fails: nothing is sent, nothing written
            await alice.send("after")
            assert await recv(alice) == "alice: after"
        for query in ("user=bob&tags=10", "user=bob&pad=17000"):  # 11 tags; an attachment past 16 KiB
            with pytest.raises(InvalidStatus) as refused:
                async with websockets.connect(ws_url(system.url, name, query)):
                    pass
            assert refused.value.response.status_code == 422
            assert json.loads(refused.value.response.body)["error"]["code"] == "socket_limit"
        async with websockets.connect(ws_url(system.url, name, "user=bob&tags=9&pad=16000")) as bob:
            await bob.send("hi")
            assert await recv(bob) == "bob: hi"

    asyncio.run(scenario())


def test_a_client_that_reads_nothing_is_disconnected_instead_of_buffering_without_bound(socket_cluster):
    system, name = socket_cluster, room()

    async def scenario():
        async with websockets.connect(ws_url(system.url, name, "user=slow"), max_queue=1) as slow:
            await slow.send("flood 96")  # 48 MiB for a client that reads nothing
            await asyncio.to_thread(
                wait_until,
                lambda: any("closed 1008" in line for line in rpc(system, name, "log")),
                RECEIVE_BOUND_S * 2,
                "the gateway to give up on the slow client",
            )

    asyncio.run(scenario())
    assert rpc(system, name, "sockets") == []


# -- auth and tenants -----------------------------------------------------------------------------


def test_the_upgrade_needs_a_key_whose_token_never_reaches_the_object_and_sockets_stay_in_their_tenant(
    socket_cluster,
):
    system, name = socket_cluster, room()
    key = system.keys.create("acme", "call")

    async def scenario():
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(ws_url(system.keyed_url, name, "user=alice")):
                pass
        assert refused.value.response.status_code == 401
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(ws_url(system.keyed_url, name, "user=alice&token=solo_x_y")):
                pass
        assert refused.value.response.status_code == 401
        url = ws_url(system.keyed_url, name, f"user=alice&token={key.token}")
        async with websockets.connect(url) as alice:
            await alice.send("hello")
            assert await recv(alice) == "alice: hello"
            headers = {"Authorization": f"Bearer {key.token}"}
            response = httpx.post(f"{system.keyed_url}/v1/objects/Room/{name}/sockets", json={}, headers=headers)
            (listed,) = response.json()["result"]
            assert listed["attachment"]["query"] == ["user"]  # the token was not passed on
            assert await asyncio.to_thread(rpc, system, name, "sockets") == []  # tenant default's Room: none

    asyncio.run(scenario())


# -- faults ---------------------------------------------------------------------------------------


def test_kill_9_of_the_owner_closes_no_socket_and_loses_or_doubles_no_message(socket_cluster):
    system, name = socket_cluster, room()
    count = 150

    async def scenario():
        async with (
            websockets.connect(ws_url(system.url, name, "user=alice")) as alice,
            websockets.connect(ws_url(system.url, name, "user=bob")) as bob,
        ):
            await alice.send("warm")
            assert await recv(bob) == "alice: warm"
            await recv(alice)
            owner = info(system, name)["owner"]
            owner_process = system.cluster.worker_by_id(owner)
            received: dict[str, list[str]] = {"alice": [], "bob": []}

            async def collect(client, who):
                while len(received[who]) < count:
                    received[who].append(await recv(client))

            collectors = [asyncio.create_task(collect(alice, "alice")), asyncio.create_task(collect(bob, "bob"))]
            for i in range(count):
                await alice.send(f"m{i}")
                if len(received["bob"]) >= 20 and owner_process.poll() is None:
                    owner_process.send_signal(signal.SIGKILL)
                    owner_process.wait()
                    in_flight = (i + 1) - len(received["bob"])  # sent by the client, not yet back
                await asyncio.sleep(0.005)
            if owner_process.poll() is None:  # a slow machine: kill once 20 are back, the rest still in flight
                while len(received["bob"]) < 20:
                    await asyncio.sleep(0.005)
                owner_process.send_signal(signal.SIGKILL)
                owner_process.wait()
                in_flight = count - len(received["bob"])
            await asyncio.gather(*collectors)
            expected = [f"alice: m{i}" for i in range(count)]
            assert received["alice"] == expected
            assert received["bob"] == expected
            assert alice.state.name == "OPEN" and bob.state.name == "OPEN"
            return owner, in_flight

    owner, in_flight = asyncio.run(scenario())
    assert in_flight > 0  # the kill hit messages in flight: they were handled after it, by another worker
    workers = [a.worker_id for a in history(system.env, "Room", name)]
    assert owner in workers and workers[-1] != owner
    system.cluster.start_worker()  # the module's other tests keep two workers


def test_an_api_process_killed_with_sockets_open_closes_them_at_the_object_with_1006(socket_cluster):
    system, name = socket_cluster, room()
    doomed_url = system.cluster.start_api()
    doomed = system.cluster.apis[-1]

    async def scenario():
        async with websockets.connect(ws_url(system.url, name, "user=alice")) as alice:
            doomed_client = await websockets.connect(ws_url(doomed_url, name, "user=bob"))
            await doomed_client.send("hi")
            assert await recv(alice) == "bob: hi"
            doomed.send_signal(signal.SIGKILL)
            doomed.wait()
            # The reaper notices the silent gateway (GATEWAY_TTL_MS) and queues bob's close event.
            await asyncio.to_thread(
                wait_until,
                lambda: [s["attachment"]["user"] for s in rpc(system, name, "sockets")] == ["alice"],
                RECEIVE_BOUND_S,
                "bob's socket to be closed at the object",
            )
            await alice.send("still here")
            assert await recv(alice) == "alice: still here"

    asyncio.run(scenario())
    assert "bob: closed 1006 the API process holding the socket stopped" in rpc(system, name, "log")


# -- the Python clients ---------------------------------------------------------------------------


def test_the_clients_open_an_objects_websocket_with_their_key_and_the_async_one_reconnects(socket_cluster):
    system, name = socket_cluster, room()
    key = system.keys.create("default", "call")
    with Client(system.keyed_url, api_key=key.token).object("Room", name).websocket(user="alice") as alice:
        alice.send("hi")
        assert alice.recv(timeout=RECEIVE_BOUND_S) == "alice: hi"

    async def scenario():
        async with AsyncClient(system.url) as client:
            rounds = []
            async for bob in client.object("Room", name).websocket(user="bob"):  # reconnects
                try:
                    await bob.send("bye" if not rounds else "back")
                    rounds.append(await recv(bob))
                    break
                except ConnectionClosed:  # the object closed the first connection: connect again
                    rounds.append("closed")
                    continue
            return rounds

    assert asyncio.run(scenario()) == ["closed", "bob: back"]


def test_a_stopped_api_process_closes_its_sockets_and_their_objects_hear_1012_at_once(socket_cluster):
    system, name = socket_cluster, room()
    leaving_url = system.cluster.start_api()
    leaving = system.cluster.apis[-1]

    async def scenario():
        async with websockets.connect(ws_url(leaving_url, name, "user=bob")) as bob:
            await bob.send("hi")
            assert await recv(bob) == "bob: hi"
            leaving.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed):
                await recv(bob)
            assert bob.close_code == 1012  # uvicorn's "service restart"
        leaving.wait()

    asyncio.run(scenario())
    wait_until(lambda: rpc(system, name, "sockets") == [], RECEIVE_BOUND_S, "bob's close event")
    assert "bob: closed 1012 " in rpc(system, name, "log")  # from the gateway, not the reaper's 1006


def test_a_rolling_restart_of_the_workers_closes_no_socket(socket_cluster):
    system, name = socket_cluster, room()

    async def scenario():
        async with websockets.connect(ws_url(system.url, name, "user=alice")) as alice:
            for turn, worker in enumerate(list(system.cluster.live_workers())):
                system.cluster.start_worker()  # the new version first, then the old one drains
                worker.send_signal(signal.SIGTERM)
                await alice.send(f"turn {turn}")  # queued while the old one drains, or after
                assert await recv(alice) == f"alice: turn {turn}"
                await asyncio.to_thread(worker.wait, RECEIVE_BOUND_S)
            await alice.send("count")
            assert await recv(alice) == "seen 1"

    asyncio.run(scenario())


def test_a_gateway_writes_its_sockets_again_when_redis_lost_them(socket_cluster, real_redis_url):
    system, name = socket_cluster, room()
    client = redis.Redis.from_url(real_redis_url)

    async def scenario():
        async with websockets.connect(ws_url(system.url, name, "user=alice")) as alice:
            (listed,) = await asyncio.to_thread(rpc, system, name, "sockets")
            prefix = system.env["SOLO_KEY_PREFIX"]
            (held,) = [k for k in client.scan_iter(f"{prefix}:gateway:*:sockets") if client.hexists(k, listed["id"])]
            client.delete(held)  # as a Redis restart without persistence would
            await asyncio.to_thread(
                wait_until, lambda: client.hexists(held, listed["id"]), RECEIVE_BOUND_S, "the heartbeat to rewrite it"
            )
            await alice.send("still")
            assert await recv(alice) == "alice: still"

    try:
        asyncio.run(scenario())
    finally:
        client.close()


def test_messages_routed_just_before_a_redis_restart_reach_the_client_once(cluster, own_redis):
    # Given a socket held by one API process, on a Redis that keeps nothing on disk
    cluster.env["REDIS_URL"] = own_redis.url
    cluster.start_worker()
    holder_url = cluster.start_api()
    other_url = cluster.start_api()  # calls go through another API process
    holder = cluster.apis[0]
    prefix, name = cluster.env["SOLO_KEY_PREFIX"], room()
    client = redis.Redis.from_url(own_redis.url)

    def announce(text: str) -> None:
        def answered():
            try:
                r = httpx.post(f"{other_url}/v1/objects/Room/{name}/announce", json={"text": text}, timeout=10)
            except httpx.HTTPError:
                return False
            return r.status_code == 200

        wait_until(answered, RECEIVE_BOUND_S * 2, f"announce {text!r} to be answered")

    async def scenario():
        async with websockets.connect(ws_url(holder_url, name, "user=alice"), ping_interval=None) as alice:
            await alice.send("warm")
            assert await recv(alice) == "alice: warm"
            (sockets_key,) = client.keys(f"{prefix}:gateway:*:sockets")
            gateway = sockets_key.decode().split(":")[-2]
            inbox = f"{prefix}:gateway:{gateway}:inbox"
            # When the holder is held still (its deadline kept on for it, as its heartbeat would),
            client.zadd(f"{prefix}:gateways", {gateway: client.time()[0] * 1000 + 600_000})
            holder.send_signal(signal.SIGSTOP)
            try:
                # the object sends messages, which wait in the holder's inbox
                for i in range(5):
                    await asyncio.to_thread(announce, f"r{i}")
                # the restart is sure to hit them (the first may have gone to a pop the holder had waiting)
                assert client.llen(inbox) >= 4
                # and Redis is killed and restarted empty
                own_redis.kill()
                own_redis.start()
            finally:
                holder.send_signal(signal.SIGCONT)
            # Then each reaches the client once, in order, and the socket stays open
            assert await recv_n(alice, 5) == [f"r{i}" for i in range(5)]
            await asyncio.to_thread(announce, "end")
            assert await recv(alice) == "end"
            await alice.send("after")
            assert await recv(alice) == "alice: after"

    try:
        asyncio.run(scenario())
    finally:
        client.close()
