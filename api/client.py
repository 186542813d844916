"""Python clients for the HTTP API.

from solo import Client
Client("http://127.0.0.1:8000", api_key=key).object("Counter", "a").increment(by=2)

`api_key`: an API key (`solo keys create`), sent as ``Authorization: Bearer <key>`` with every
request; leave it out for a server with SOLO_AUTH=off (`solo dev`). Nothing reads it from the
environment for you: pass it explicitly. `tenant`: the tenant an operator key acts in (sent as
``Solo-Tenant``); other keys always act in their own.

WebSockets: ``ref.websocket(user="alice")`` opens the object's socket (query parameters from the
keywords) with the client's key and tenant, as a connection of the `websockets` library: sync for
Client, and for AsyncClient one to ``await``, use in ``async with``, or iterate over with ``async
for``, which connects again (with backoff) whenever the connection drops. solo keeps no socket
state for a client that reconnects: it is a new socket (new connect event, tags and attachment).

An ObjectRef's own methods (info, export, import_, restore, delete, purge_mailbox, call,
call_async, websocket) take precedence over the object's @rpc methods of the same name;
reach those with ``ref.call("delete", key="k")``.
"""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO
from urllib.parse import quote, urlencode

import httpx
import websockets.asyncio.client
import websockets.sync.client

from solo.api.errors import CallError

TRANSFER_CHUNK_BYTES = 256 * 1024
SQLITE_MEDIA_TYPE = "application/octet-stream"

Progress = Callable[[int, int | None], None]
"""progress(bytes_done, bytes_total or None): called as a transfer advances."""


def _path(class_name: str, name: str) -> str:
    return f"/v1/objects/{quote(class_name, safe='')}/{quote(name, safe='')}"


def _headers(idempotency_key: str | None, respond_async: bool) -> dict[str, str]:
    headers = {}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    if respond_async:
        headers["Prefer"] = "respond-async"
    return headers


def _auth_headers(api_key: str | None, tenant: str | None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    if tenant is not None:
        headers["Solo-Tenant"] = tenant
    return headers


def _websocket(http: httpx.Client | httpx.AsyncClient, path: str, query: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The URL of an object's WebSocket and the headers of its upgrade (the client's key and tenant)."""
    base = str(http.base_url).rstrip("/")
    scheme, rest = base.split("://", 1)
    url = f"{'wss' if scheme == 'https' else 'ws'}://{rest}{path}/ws"
    if query:
        url += "?" + urlencode({k: str(v) for k, v in query.items()})
    headers = {k: v for k, v in http.headers.items() if k.lower() in ("authorization", "solo-tenant")}
    return url, headers


def _result(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        raise CallError(response.status_code, {"code": "bad_response", "message": response.text[:200]}) from None
    if response.status_code >= 400:
        raise CallError(response.status_code, body.get("error", {}))
    return body


def _raise_for_error(response: httpx.Response) -> None:
    """For responses that are not JSON when they succeed (export)."""
    if response.status_code >= 400:
        response.read()
        _result(response)


def _restore_body(seq: int | None, at: dt.datetime | str | None) -> dict[str, Any]:
    if (seq is None) == (at is None):
        raise ValueError("restore needs exactly one of seq= or at=")
    if seq is not None:
        return {"seq": seq}
    return {"at": at.isoformat() if isinstance(at, dt.datetime) else at}


def _file_chunks(file: BinaryIO, total: int | None, progress: Progress | None) -> Iterator[bytes]:
    done = 0
    if progress:
        progress(0, total)
    while chunk := file.read(TRANSFER_CHUNK_BYTES):
        yield chunk
        done += len(chunk)
        if progress:
            progress(done, total)


class ObjectRef:
    """A handle on one object; attribute access gives its methods."""

    def __init__(self, client: Client, class_name: str, name: str) -> None:
        self._client, self._path = client, _path(class_name, name)

    def call(self, method: str, /, *, idempotency_key: str | None = None, **kwargs: Any) -> Any:
        response = self._client.http.post(
            f"{self._path}/{quote(method, safe='')}", json=kwargs, headers=_headers(idempotency_key, False)
        )
        return _result(response)["result"]

    def call_async(self, method: str, /, *, idempotency_key: str | None = None, **kwargs: Any) -> str:
        """Queue a call and return its call id without waiting (Prefer: respond-async)."""
        response = self._client.http.post(
            f"{self._path}/{quote(method, safe='')}", json=kwargs, headers=_headers(idempotency_key, True)
        )
        return _result(response)["call_id"]

    def info(self) -> dict[str, Any]:
        return _result(self._client.http.get(self._path))

    def websocket(self, **query: Any) -> websockets.sync.client.ClientConnection:
        """Open the object's WebSocket; `query` becomes the upgrade's query string (request.query)."""
        url, headers = _websocket(self._client.http, self._path, query)
        return websockets.sync.client.connect(url, additional_headers=headers)

    # -- durable state ------------------------------------------------------

    def export(self) -> bytes:
        """The object's state as the bytes of a plain .sqlite file."""
        response = self._client.http.get(f"{self._path}/export")
        _raise_for_error(response)
        return response.content

    def export_to(self, file: BinaryIO, *, progress: Progress | None = None, timeout_s: float | None = None) -> int:
        """Stream the export into `file`; returns the sequence exported."""
        timeout = httpx.USE_CLIENT_DEFAULT if timeout_s is None else timeout_s
        with self._client.http.stream("GET", f"{self._path}/export", timeout=timeout) as response:
            _raise_for_error(response)
            length = response.headers.get("content-length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            if progress:
                progress(0, total)
            for chunk in response.iter_bytes(TRANSFER_CHUNK_BYTES):
                file.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
            return int(response.headers.get("solo-seq", "0"))

    def import_(self, data: bytes) -> int:
        """Replace the object's state with a .sqlite file's bytes; returns the new sequence."""
        response = self._client.http.put(
            f"{self._path}/import", content=data, headers={"Content-Type": SQLITE_MEDIA_TYPE}
        )
        return _result(response)["seq"]

    def import_from(
        self,
        file: BinaryIO,
        *,
        size: int | None = None,
        progress: Progress | None = None,
        timeout_s: float | None = None,
    ) -> int:
        """Stream a .sqlite file's bytes from `file` (`size` bytes, if known); returns the new sequence."""
        headers = {"Content-Type": SQLITE_MEDIA_TYPE}
        if size is not None:
            headers["Content-Length"] = str(size)  # lets the server refuse an oversized file at once
        response = self._client.http.put(
            f"{self._path}/import",
            content=_file_chunks(file, size, progress),
            headers=headers,
            timeout=httpx.USE_CLIENT_DEFAULT if timeout_s is None else timeout_s,
        )
        return _result(response)["seq"]

    def restore(self, seq: int | None = None, at: dt.datetime | str | None = None) -> dict[str, int]:
        """Return the object to sequence `seq` or to time `at`: {"seq": new, "restored_from": n}."""
        return _result(self._client.http.post(f"{self._path}/restore", json=_restore_body(seq, at)))

    def delete(self) -> bool:
        """Remove the object's state; False if it had none. The next call starts empty."""
        try:
            return _result(self._client.http.delete(self._path))["deleted"]
        except CallError as exc:
            if exc.code == "object_not_found":
                return False
            raise

    def activations(self) -> list[dict[str, Any]]:
        """The object's activations, oldest first: epoch, worker (operator keys only), started_at, stopped_at
        (GET .../history)."""
        return _result(self._client.http.get(f"{self._path}/history"))["activations"]

    def purge_mailbox(self) -> int:
        """Fail the object's queued calls with `purged` (not a batch it is running); returns how many."""
        return _result(self._client.http.delete(f"{self._path}/mailbox"))["purged"]

    def evict(self) -> bool:
        """End the object's activation after its current batch; False if no worker runs it."""
        return _result(self._client.http.post(f"{self._path}/evict"))["evicting"]

    def cancel_alarm(self, name: str = "_alarm") -> bool:
        """Cancel the object's alarm, or its schedule `name` (CallError alarm_not_found if it has none)."""
        return _result(self._client.http.delete(f"{self._path}/alarms/{quote(name, safe='')}"))["cancelled"]

    def fire_alarm_now(self, name: str = "_alarm") -> int:
        """Make the object's alarm, or its schedule `name`, due now; returns that time (epoch ms)."""
        return _result(self._client.http.post(f"{self._path}/alarms/{quote(name, safe='')}/fire-now"))["due_ms"]

    def __getattr__(self, method: str):
        if method.startswith("_"):
            raise AttributeError(method)
        return lambda **kwargs: self.call(method, **kwargs)


def _alarm_filters(
    due_before: int | str | None, class_name: str | None, state: str | None, limit: int | None
) -> dict[str, str]:
    given = {"due_before": due_before, "class": class_name, "state": state, "limit": limit}
    return {key: str(value) for key, value in given.items() if value is not None}


def _listing_params(
    class_name: str | None, prefix: str | None, limit: int | None, cursor: str | None
) -> dict[str, Any]:
    given = {"class": class_name, "prefix": prefix, "limit": limit, "cursor": cursor}
    return {k: v for k, v in given.items() if v is not None}


class Client:
    def __init__(
        self,
        url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        tenant: str | None = None,
        timeout_s: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.http = httpx.Client(
            base_url=url, timeout=timeout_s, transport=transport, headers=_auth_headers(api_key, tenant)
        )

    def object(self, class_name: str, name: str) -> ObjectRef:
        return ObjectRef(self, class_name, name)

    def call_status(self, call_id: str) -> dict[str, Any]:
        return _result(self.http.get(f"/v1/calls/{quote(call_id, safe='')}"))

    def alarms(
        self,
        *,
        due_before: int | str | None = None,
        class_name: str | None = None,
        state: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Alarms and schedules across all objects (GET /v1/alarms)."""
        params = _alarm_filters(due_before, class_name, state, limit)
        return _result(self.http.get("/v1/alarms", params=params))["alarms"]

    def purge_alarms(self, class_name: str) -> int:
        """Remove the orphaned alarms of a class no longer served (DELETE /v1/alarms); returns how many."""
        return _result(self.http.delete("/v1/alarms", params={"class": class_name}))["purged"]

    def workers(self) -> list[dict[str, Any]]:
        """The live worker processes (GET /v1/workers; an operator's key)."""
        return _result(self.http.get("/v1/workers"))["workers"]

    def objects(
        self,
        *,
        class_name: str | None = None,
        prefix: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page of the tenant's objects (GET /v1/objects): {"objects": [...], "next_cursor": ...}."""
        return _result(self.http.get("/v1/objects", params=_listing_params(class_name, prefix, limit, cursor)))

    def all_objects(
        self, *, class_name: str | None = None, prefix: str | None = None, page_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every object the listing finds, page after page."""
        cursor = None
        while True:
            page = self.objects(class_name=class_name, prefix=prefix, limit=page_size, cursor=cursor)
            yield from page["objects"]
            cursor = page["next_cursor"]
            if cursor is None:
                return

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: builtins.object) -> None:  # `object` is the method above
        self.close()


class AsyncObjectRef:
    def __init__(self, client: AsyncClient, class_name: str, name: str) -> None:
        self._client, self._path = client, _path(class_name, name)

    async def call(self, method: str, /, *, idempotency_key: str | None = None, **kwargs: Any) -> Any:
        response = await self._client.http.post(
            f"{self._path}/{quote(method, safe='')}", json=kwargs, headers=_headers(idempotency_key, False)
        )
        return _result(response)["result"]

    async def call_async(self, method: str, /, *, idempotency_key: str | None = None, **kwargs: Any) -> str:
        """Queue a call and return its call id without waiting (Prefer: respond-async)."""
        response = await self._client.http.post(
            f"{self._path}/{quote(method, safe='')}", json=kwargs, headers=_headers(idempotency_key, True)
        )
        return _result(response)["call_id"]

    def websocket(self, **query: Any) -> websockets.asyncio.client.connect:
        """The object's WebSocket: ``await`` it, ``async with`` it, or ``async for`` over it to reconnect."""
        url, headers = _websocket(self._client.http, self._path, query)
        return websockets.asyncio.client.connect(url, additional_headers=headers)

    async def info(self) -> dict[str, Any]:
        return _result(await self._client.http.get(self._path))

    async def export(self) -> bytes:
        response = await self._client.http.get(f"{self._path}/export")
        if response.status_code >= 400:
            _result(response)
        return response.content

    async def import_(self, data: bytes) -> int:
        response = await self._client.http.put(
            f"{self._path}/import", content=data, headers={"Content-Type": SQLITE_MEDIA_TYPE}
        )
        return _result(response)["seq"]

    async def restore(self, seq: int | None = None, at: dt.datetime | str | None = None) -> dict[str, int]:
        return _result(await self._client.http.post(f"{self._path}/restore", json=_restore_body(seq, at)))

    async def delete(self) -> bool:
        try:
            return _result(await self._client.http.delete(self._path))["deleted"]
        except CallError as exc:
            if exc.code == "object_not_found":
                return False
            raise

    async def purge_mailbox(self) -> int:
        return _result(await self._client.http.delete(f"{self._path}/mailbox"))["purged"]

    async def evict(self) -> bool:
        return _result(await self._client.http.post(f"{self._path}/evict"))["evicting"]

    async def cancel_alarm(self, name: str = "_alarm") -> bool:
        return _result(await self._client.http.delete(f"{self._path}/alarms/{quote(name, safe='')}"))["cancelled"]

    async def fire_alarm_now(self, name: str = "_alarm") -> int:
        response = await self._client.http.post(f"{self._path}/alarms/{quote(name, safe='')}/fire-now")
        return _result(response)["due_ms"]

    def __getattr__(self, method: str):
        if method.startswith("_"):
            raise AttributeError(method)

        async def invoke(**kwargs: Any) -> Any:
            return await self.call(method, **kwargs)

        return invoke


class AsyncClient:
    def __init__(
        self,
        url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        tenant: str | None = None,
        timeout_s: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.http = httpx.AsyncClient(
            base_url=url, timeout=timeout_s, transport=transport, headers=_auth_headers(api_key, tenant)
        )

    def object(self, class_name: str, name: str) -> AsyncObjectRef:
        return AsyncObjectRef(self, class_name, name)

    async def call_status(self, call_id: str) -> dict[str, Any]:
        return _result(await self.http.get(f"/v1/calls/{quote(call_id, safe='')}"))

    async def alarms(
        self,
        *,
        due_before: int | str | None = None,
        class_name: str | None = None,
        state: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Alarms and schedules across all objects (GET /v1/alarms)."""
        params = _alarm_filters(due_before, class_name, state, limit)
        return _result(await self.http.get("/v1/alarms", params=params))["alarms"]

    async def objects(
        self,
        *,
        class_name: str | None = None,
        prefix: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page of the tenant's objects (GET /v1/objects): {"objects": [...], "next_cursor": ...}."""
        params = _listing_params(class_name, prefix, limit, cursor)
        return _result(await self.http.get("/v1/objects", params=params))

    async def workers(self) -> list[dict[str, Any]]:
        """The live worker processes (GET /v1/workers; an operator's key)."""
        return _result(await self.http.get("/v1/workers"))["workers"]

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: builtins.object) -> None:  # `object` is the method above
        await self.aclose()
