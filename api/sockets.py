"""The WebSocket gateway: ``GET /v1/objects/{class}/{name}/ws``, held by the API process.

The API process holding a socket is its gateway. It owns the connection; the object
owns only its registry entry (objects/websockets.py). The gateway

- turns every event of the socket into an entry of the object's mailbox: connect (whose
  outcome accepts or refuses the upgrade), each message, close and error, one after the
  other, so they run in order with the object's calls and alarms;
- pops the messages objects send (its inbox, objects/coordination/gateways.py) and writes
  them to their sockets in order, dropping a message it already wrote (a new owner sends
  the leftovers of a former one's outbox again);
- answers the object's auto-response itself, and pings through the server (uvicorn);
- bounds what a slow client has not read yet: past ``MAX_UNSENT_BYTES`` it gives up on the
  socket (close 1008) instead of growing;
- keeps a heartbeat in Redis, on a thread of its own (api/gateway_heartbeat.py), so that if
  this process dies, a worker's reaper closes its sockets at their objects (code 1006) within
  about ``GATEWAY_TTL_MS`` plus a sweep; if Redis restarted empty (its inbox lost), it asks
  its objects to route their recent messages again.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import logging
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import redis
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message
from starlette.websockets import WebSocket, WebSocketState

from solo.api.auth import TOKEN_QUERY_PARAMETER, refuse_websocket
from solo.api.calls import CallService
from solo.api.errors import UpgradeRequired, outcome_error_response, solo_error_response
from solo.api.gateway_heartbeat import GatewayHeartbeat
from solo.api.ws_protocol import DETACH_EXTENSION, SEND_ENCODED_EXTENSION, WRITABLE_EXTENSION, encoded_frame
from solo.objects.calls import Call, Outcome
from solo.objects.coordination.gateways import AsyncGateway, GatewayBeat
from solo.objects.errors import CallTimeout, MailboxFull, SoloError, WebSocketsNotSupported
from solo.objects.naming import Address, new_call_id
from solo.objects.websockets import MAX_MESSAGE_BYTES, accepts_sockets, address_of, event_call, lost_event_id

log = logging.getLogger(__name__)

MAX_UNSENT_BYTES = 8 * 1024 * 1024  # per socket: written to the gateway, not yet taken by the client
SLOW_CLOSE_S = 5.0  # how long a close frame may wait behind a client that reads nothing
RECENTLY_CLOSED = 10_000  # socket ids remembered after they close: late messages for them are dropped
ENQUEUE_RETRY_S = 0.05  # a full mailbox holds the socket's reading (backpressure) rather than dropping
REDIS_GIVE_UP_S = 60.0  # how long a close or error event waits for Redis to come back


@dataclass(eq=False, slots=True)  # slots: one per open socket, 10,000s of them in a process
class _Socket:
    id: str
    websocket: WebSocket
    address: Address
    held: bool = False  # in the gateway's hash of sockets in Redis (and not yet being let go)
    accepted: bool = False  # the upgrade was answered
    admitted: bool = False  # the object accepted it: it must get a close event, whatever happens
    given_up: bool = False  # past a limit: its messages are dropped, its close frame is on the way
    ended: bool = False  # the object knows the socket is over (it closed it, or got its close event)
    auto_response: tuple[str, str] | None = None
    last: tuple[int, int] = (0, 0)  # (epoch, number) of the last message written: repeats are dropped
    unsent: deque[tuple[str, Any]] | None = None  # made when there is something to write (most sockets idle)
    unsent_bytes: int = 0
    writer: asyncio.Task[None] | None = None
    # True while a send would not wait (solo's server protocol, api/ws_protocol.py); None under another server
    writable: Callable[[], bool] | None = None
    # Writes a frame encoded once for all sockets, if it can go now (api/ws_protocol.py); None under another server
    send_encoded: Callable[[bytes], bool] | None = None
    # Detached (solo's server protocol): events come by callback, a reader task takes them while there are any
    detached: bool = False
    events: deque[dict[str, Any]] | None = None
    reader: asyncio.Task[None] | None = None
    resume_reading: Callable[[], None] | None = None


class SocketGateway:
    def __init__(
        self, calls: CallService, gateway: AsyncGateway, beat: GatewayBeat, *, connect_timeout_s: float
    ) -> None:
        self.calls = calls
        self.gateway = gateway
        self.gateway_id = gateway.gateway_id
        self.connect_timeout_s = connect_timeout_s
        self._sockets: dict[str, _Socket] = {}
        self._held = 0  # sockets with `held` set
        self._restoring = False
        self._first_beat = beat.beat
        self.heartbeat = GatewayHeartbeat(
            beat.beat, active=lambda: self._known, held=lambda: self._held, on_lost=self._lost
        )
        self._closed: OrderedDict[str, None] = OrderedDict()
        self._tasks: list[asyncio.Task[None]] = []
        # Loops end by this flag as well as by cancelling: redis-py may turn a cancellation that lands
        # in its read timeout into a TimeoutError, which the loops survive (and stop() would wait forever).
        self._stopping = False
        # Once this process has held a socket it keeps its heartbeat until it stops: a gateway that
        # went quiet with no sockets could be reaped just as it takes a new one.
        self._known = False
        self._resuming: set[asyncio.Task[None]] = set()
        self._readers: set[asyncio.Task[None]] = set()  # of detached sockets with events to take

    @property
    def open_sockets(self) -> int:
        return len(self._sockets)

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self.heartbeat.start()
        self._tasks = [asyncio.create_task(self._listen(), name="solo-gateway-inbox")]

    async def stop(self) -> None:
        if self._readers:  # the server closed its sockets (1012): their close events are being queued
            await asyncio.wait(self._readers, timeout=REDIS_GIVE_UP_S)
        self._stopping = True
        await self.heartbeat.stop()
        for task in [*self._tasks, *self._resuming]:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._sockets:  # the server closed them; their close events are queued by now or never
            log.warning("stopping with %d WebSockets still registered; the reaper closes them", len(self._sockets))
            return
        if self._known:
            with contextlib.suppress(redis.RedisError):
                await self.gateway.leave()

    def _lost(self, missing: bool) -> None:
        """The heartbeat found this gateway's sockets lost by Redis (`missing`: its whole entry, a restart)."""
        if self._restoring or self._stopping:
            return
        self._restoring = True
        task = asyncio.create_task(self._restore(missing))
        self._resuming.add(task)
        task.add_done_callback(self._resuming.discard)

    async def _restore(self, missing: bool) -> None:
        try:
            await self.gateway.restore({s.id: s.address for s in self._sockets.values() if s.held})
            if missing:
                self._resume()
        except redis.RedisError as exc:
            log.warning("gateway sockets not written again: %s; the next heartbeat retries", exc)
        finally:
            self._restoring = False

    def _resume(self) -> None:
        """Redis forgot this gateway (a restart): its inbox is lost, so each object routes its outbox again.

        One resume event per object with admitted sockets; what the sockets already got is dropped
        by the (epoch, number) check, so the client sees each message once.
        """
        by_object: dict[str, _Socket] = {}
        for sock in self._sockets.values():
            if sock.admitted and not sock.ended:
                by_object.setdefault(sock.address.object_id, sock)
        if by_object:
            log.warning("Redis lost this gateway; %d objects route their recent messages again", len(by_object))
        for sock in by_object.values():
            task = asyncio.create_task(self._enqueue(self._event(sock, "resume")))
            self._resuming.add(task)
            task.add_done_callback(self._resuming.discard)

    # -- one socket ------------------------------------------------------------------

    async def serve(self, websocket: WebSocket) -> None:
        try:
            address = self.calls.addressed(websocket)
            if not accepts_sockets(self.calls.registry.get(address.class_name)):
                raise WebSocketsNotSupported(f"{address.class_name} does not accept WebSockets")
        except SoloError as exc:
            await refuse_websocket(websocket, solo_error_response(exc))
            return
        sock = _Socket(uuid.uuid4().hex, websocket, address)
        self._sockets[sock.id] = sock
        try:
            # Held before the connect event is queued: if this process dies from here on, the reaper
            # closes the socket at its object, accepted or not.
            if not self._known:
                await asyncio.to_thread(self._first_beat)  # in the index before its first socket's entry
                self._known = True
            await self.gateway.hold(sock.id, address)
            sock.held = True
            self._held += 1
            refusal = await self._connect(sock)
            if refusal is not None:
                await refuse_websocket(websocket, refusal)
                return
            sock.admitted = True
            await websocket.accept()
            sock.accepted = True
            extensions = websocket.scope.get("extensions", {})
            sock.writable = extensions.get(WRITABLE_EXTENSION)
            sock.send_encoded = extensions.get(SEND_ENCODED_EXTENSION)
            _forget_handshake(websocket)
            self._write_soon(sock)
            detach = extensions.pop(DETACH_EXTENSION, None)
            if detach is not None:
                self._detach(sock, detach)
                return  # the socket stays open; its events come by callback (_arrived)
            await self._read(sock)
        finally:
            if not sock.detached:
                await self._let_go(sock)

    async def _let_go(self, sock: _Socket) -> None:
        """The socket is over: its object hears of it (if not yet), and this process forgets it."""
        if sock.admitted and not sock.ended:  # the connection failed under us (gone before the accept)
            with contextlib.suppress(Exception):
                await self._end(sock, 1006, "the connection was lost")
        self._sockets.pop(sock.id, None)
        self._closed[sock.id] = None
        if len(self._closed) > RECENTLY_CLOSED:
            self._closed.popitem(last=False)
        if sock.writer is not None:
            sock.writer.cancel()
        if sock.held:
            sock.held = False
            self._held -= 1
        with contextlib.suppress(redis.RedisError):
            await self.gateway.let_go(sock.id)

    async def upgrade_required(self, request: Request) -> Response:
        """A plain GET of the route: the object is addressed as for an upgrade, then 426 upgrade_required."""
        address = self.calls.addressed(request)
        if not accepts_sockets(self.calls.registry.get(address.class_name)):
            raise WebSocketsNotSupported(f"{address.class_name} does not accept WebSockets")
        raise UpgradeRequired("this is a WebSocket route: open it with an upgrade (Upgrade: websocket)")

    async def _connect(self, sock: _Socket) -> Response | None:
        """The object's answer to the connect event: None if it accepted, else the refusal to send."""
        ws = sock.websocket
        request = {
            "path": ws.url.path,
            "query": {k: v for k, v in ws.query_params.items() if k != TOKEN_QUERY_PARAMETER},
            "headers": {k: v for k, v in ws.headers.items() if k != "authorization"},
        }
        call = replace(self._event(sock, "connect", request=request), reply_to=self.calls.replies.key)
        try:
            outcome: Outcome = await self.calls.call(call, self.connect_timeout_s)
        except CallTimeout as exc:
            # The object may still accept it later: its close event follows, so the registry stays true.
            sock.ended = True
            await self._enqueue(self._event(sock, "close", code=1006, reason="connect timed out"))
            return solo_error_response(exc)
        except SoloError as exc:
            return solo_error_response(exc)
        if not outcome.ok:
            sock.ended = True
            return outcome_error_response(outcome.error or {}, outcome.call_id)
        pair = (outcome.result or {}).get("auto_response")
        sock.auto_response = (pair[0], pair[1]) if isinstance(pair, list) and len(pair) == 2 else None
        return None

    async def _read(self, sock: _Socket) -> None:
        """The socket's events, read in a loop: under a server without solo's detach extension."""
        while not await self._take(sock, await sock.websocket.receive()):
            pass

    def _detach(self, sock: _Socket, detach: Callable[[Callable[[dict[str, Any]], None]], tuple[Any, Any]]) -> None:
        """Take the socket's events by callback: an idle socket keeps no task and no coroutine (ADR 0009).

        It writes straight to the server protocol from then on, so the handshake's scope and the
        middleware's wrappers of its send, which the request's WebSocket holds, go with the ASGI call.
        """
        sock.detached = True
        sock.resume_reading, send = detach(functools.partial(self._arrived, sock))
        websocket = WebSocket({"type": "websocket"}, _nothing_to_receive, send)
        websocket.client_state = websocket.application_state = WebSocketState.CONNECTED
        sock.websocket = websocket

    def _arrived(self, sock: _Socket, message: dict[str, Any]) -> None:
        """An event of a detached socket (called by the server protocol): a reader task takes it, in order."""
        if self._sockets.get(sock.id) is not sock:
            return  # over and forgotten (the protocol tells of the lost connection after the close)
        if sock.events is None:
            sock.events = deque()
        sock.events.append(message)
        if sock.reader is None:
            sock.reader = asyncio.create_task(self._take_events(sock))
            self._readers.add(sock.reader)
            sock.reader.add_done_callback(self._readers.discard)

    async def _take_events(self, sock: _Socket) -> None:
        """A detached socket's events, while it has any; the task ends when the socket is idle again."""
        try:
            while sock.events:
                message = sock.events.popleft()
                if not sock.events:
                    sock.events = None
                    if sock.resume_reading is not None:
                        sock.resume_reading()  # as the server's receive does once the application took everything
                if await self._take(sock, message):
                    sock.events = sock.resume_reading = None
                    await self._let_go(sock)
                    return
        except Exception:
            log.exception("a WebSocket event could not be queued; closing the socket")
            sock.events = sock.resume_reading = None
            await self._let_go(sock)
            await self._close_frame(sock, 1011, "internal error")
        finally:
            sock.reader = None

    async def _take(self, sock: _Socket, message: Mapping[str, Any]) -> bool:
        """One event of the socket to its object; True once the socket is over (the client left)."""
        if message["type"] == "websocket.disconnect":
            code = int(message.get("code") or 1005)
            if code == 1009:
                await self._end(sock, code, "message too big", error=f"a message was over {MAX_MESSAGE_BYTES} bytes")
            else:
                await self._end(sock, code, str(message.get("reason") or ""))
            return True
        if sock.ended:
            return False
        text, data = message.get("text"), message.get("bytes")
        if text is not None:
            if len(text) > MAX_MESSAGE_BYTES // 4 and len(text.encode()) > MAX_MESSAGE_BYTES:
                await self._give_up(sock, 1009, "message too big", f"a message was over {MAX_MESSAGE_BYTES} bytes")
                return False
            if sock.auto_response is not None and text == sock.auto_response[0]:
                self._push(sock, ("text", sock.auto_response[1]), len(sock.auto_response[1]))
                return False
            await self._enqueue(self._event(sock, "message", text=text))
        elif data is not None:
            if len(data) > MAX_MESSAGE_BYTES:
                await self._give_up(sock, 1009, "message too big", f"a message was over {MAX_MESSAGE_BYTES} bytes")
                return False
            await self._enqueue(self._event(sock, "message", bytes=base64.b64encode(data).decode()))
        return False

    async def _end(self, sock: _Socket, code: int, reason: str, *, error: str | None = None) -> None:
        """Tell the object the socket is over (once): its error event if any, then its close event."""
        if sock.ended:
            return
        sock.ended = True
        if error is not None:
            await self._enqueue(self._event(sock, "error", error=error))
        await self._enqueue(self._event(sock, "close", code=code, reason=reason))

    async def _give_up(self, sock: _Socket, code: int, reason: str, error: str) -> None:
        """A limit was passed: the object learns it at once; the client gets a close frame if it reads."""
        sock.given_up = True
        await self._end(sock, code, reason, error=error)
        self._drop_unsent(sock)
        if sock.writer is not None:
            sock.writer.cancel()
        asyncio.create_task(self._close_frame(sock, code, reason))

    async def _close_frame(self, sock: _Socket, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            if sock.websocket.application_state == WebSocketState.CONNECTED:
                await asyncio.wait_for(sock.websocket.close(code, reason), SLOW_CLOSE_S)

    def _event(self, sock: _Socket, event: str, **fields: Any) -> Call:
        return event_call(sock.address, sock.id, self.gateway_id, event, new_call_id(), **fields)

    async def _enqueue(self, call: Call) -> None:
        """Queue an event in the object's mailbox, waiting while it is full or Redis is away.

        A message waits as long as it takes (the socket's reading waits with it). A close or error
        event waits at most REDIS_GIVE_UP_S, so that a stopping process ends: a lost close event is
        repaired by the reaper, or by this gateway when the object next sends to the socket.
        """
        bounded = call.args.get("event") in ("close", "error")
        give_up = asyncio.get_running_loop().time() + REDIS_GIVE_UP_S
        while True:
            try:
                await self.calls.submit(call)
                return
            except MailboxFull:
                await asyncio.sleep(ENQUEUE_RETRY_S)
            except redis.RedisError as exc:
                if bounded and asyncio.get_running_loop().time() > give_up:
                    log.error("socket event %s for %s dropped: %s", call.call_id, call.object_id, exc)
                    return
                log.warning("socket event for %s not queued yet: %s; retrying", call.object_id, exc)
                await asyncio.sleep(0.5)

    # -- messages for sockets ------------------------------------------------------------

    async def _listen(self) -> None:
        while not self._stopping:
            try:
                messages = await self.gateway.pop()
            except redis.RedisError as exc:
                log.warning("gateway inbox: %s; retrying", exc)
                await asyncio.sleep(0.2)
                continue
            for message in messages:
                try:
                    await self._deliver(message)
                except Exception:
                    log.exception("a message for WebSockets could not be delivered")

    async def _deliver(self, message: dict[str, Any]) -> None:
        key = (int(message.get("e") or 0), int(message.get("n") or 0))
        kind, data = message.get("k"), message.get("d")
        item: tuple[str, Any] | None = None
        size = 0
        if kind == "text" and isinstance(data, str):
            item, size = ("text", data), len(data)
        elif kind == "bytes" and isinstance(data, str):
            raw = base64.b64decode(data)
            item, size = ("bytes", raw), len(raw)
        elif kind == "close":
            item = ("close", (int(message.get("c") or 1000), str(message.get("r") or "")))
        frame: bytes | None = None  # the item as a frame, encoded once for all its sockets
        for socket_id in message.get("s") or []:
            sock = self._sockets.get(socket_id)
            if sock is None:
                if socket_id not in self._closed:
                    await self._unknown(socket_id, message.get("o"))
                continue
            if key <= sock.last:
                continue  # written already (a new owner sent a former owner's outbox again)
            sock.last = key
            if kind == "auto" and isinstance(data, str):
                pair = json.loads(data)
                sock.auto_response = (pair[0], pair[1])
            elif item is not None:
                if kind != "close" and _idle_and_direct(sock):
                    if frame is None:
                        frame = encoded_frame(item[1])
                    if sock.send_encoded is not None and sock.send_encoded(frame):
                        continue
                if kind == "close":
                    sock.ended = True  # closed by the object: it expects no close event
                self._push(sock, item, size, inline=True)
                if sock.unsent and sock.writer is None and sock.writable is not None:
                    await self._write_inline(sock)

    async def _unknown(self, socket_id: str, raw_address: Any) -> None:
        """A message for a socket this process does not hold (it restarted): the object forgets it."""
        address = address_of(raw_address)
        if address is None:
            return
        self._closed[socket_id] = None
        call = event_call(
            address,
            socket_id,
            self.gateway_id,
            "close",
            lost_event_id(self.gateway_id, socket_id),
            code=1006,
            reason="the API process does not hold this socket",
        )
        await self._enqueue(call)

    def _push(self, sock: _Socket, item: tuple[str, Any], size: int, *, inline: bool = False) -> None:
        """Queue an item for the socket; a writer task writes it, unless the caller writes `inline`."""
        if sock.given_up or (sock.unsent and sock.unsent[-1][0] == "close"):
            return
        if sock.unsent is None:
            sock.unsent = deque()
        sock.unsent.append(item)
        sock.unsent_bytes += size
        if sock.unsent_bytes > MAX_UNSENT_BYTES:
            sock.given_up = True  # nothing more is kept for it
            self._drop_unsent(sock)
            asyncio.create_task(
                self._give_up(sock, 1008, "too slow", f"the client left over {MAX_UNSENT_BYTES} bytes unread")
            )
            return
        if not inline or sock.writable is None:
            self._write_soon(sock)

    def _drop_unsent(self, sock: _Socket) -> None:
        sock.unsent = None
        sock.unsent_bytes = 0

    async def _write_inline(self, sock: _Socket) -> None:
        """Write the socket's messages here while its transport takes them; a writer task for the rest.

        A broadcast reaches 1,000s of sockets that can all take it at once: writing in line
        saves a task per socket per message. A send to a writable socket does not wait (the
        server's send waits only for writability), so the delivery loop is not held up; a
        socket that would block, and a close (which may wait for the client), get the task.
        """
        ws = sock.websocket
        assert sock.writable is not None
        try:
            while sock.accepted and sock.unsent and sock.unsent[0][0] != "close" and sock.writable():
                kind, value = sock.unsent.popleft()
                if not sock.unsent:
                    sock.unsent = None
                sock.unsent_bytes -= len(value)
                if kind == "text":
                    await ws.send_text(value)
                else:
                    await ws.send_bytes(value)
        except Exception:  # the connection is gone: the reader gets its disconnect
            self._drop_unsent(sock)
            return
        self._write_soon(sock)

    def _write_soon(self, sock: _Socket) -> None:
        if sock.accepted and sock.writer is None and sock.unsent:
            sock.writer = asyncio.create_task(self._write(sock))

    async def _write(self, sock: _Socket) -> None:
        ws = sock.websocket
        try:
            while sock.unsent:
                kind, value = sock.unsent.popleft()
                if not sock.unsent:
                    sock.unsent = None  # an idle socket keeps no queue
                if kind == "text":
                    sock.unsent_bytes -= len(value)
                    await ws.send_text(value)
                elif kind == "bytes":
                    sock.unsent_bytes -= len(value)
                    await ws.send_bytes(value)
                else:
                    code, reason = value
                    await asyncio.wait_for(ws.close(code, reason), SLOW_CLOSE_S)
                    self._drop_unsent(sock)
                    return
        except Exception:  # the connection is gone: the reader gets its disconnect
            self._drop_unsent(sock)
        finally:
            sock.writer = None


def _idle_and_direct(sock: _Socket) -> bool:
    """Nothing of the socket waits to be written, and its server takes an encoded frame (send_encoded).

    Then a message may go out at once, bytes encoded once for every socket of a broadcast: in order,
    as nothing is before it. Otherwise it takes the socket's queue.
    """
    return (
        sock.send_encoded is not None
        and sock.accepted
        and sock.writer is None
        and not sock.unsent
        and not sock.given_up
    )


async def _nothing_to_receive() -> Message:
    raise RuntimeError("a detached socket's events come by callback")


def _forget_handshake(websocket: WebSocket) -> None:
    """Let go of the handshake's headers, parsed or not: a socket may stay open for days, and
    nothing reads them after the connect event (about 2 KiB a socket)."""
    websocket.scope["headers"] = []
    for cached in ("_headers", "_url", "_query_params"):  # Starlette's parsed copies
        websocket.__dict__.pop(cached, None)
