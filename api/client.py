"""Python clients for the HTTP API.

from api.client import Client
Client("http://127.0.0.1:8000").object("Counter", "a").increment(by=2)
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx


class CallError(Exception):
    """A call answered with an error: ``code``, ``message``, HTTP ``status``, maybe ``call_id``."""

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        self.status = status
        self.code = error.get("code", "unknown")
        self.message = error.get("message", "")
        self.call_id = error.get("call_id")
        self.error = error
        super().__init__(f"{self.code} ({status}): {self.message}")


def _path(class_name: str, name: str) -> str:
    return f"/v1/objects/{quote(class_name, safe='')}/{quote(name, safe='')}"


def _headers(idempotency_key: str | None, respond_async: bool) -> dict[str, str]:
    headers = {}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    if respond_async:
        headers["Prefer"] = "respond-async"
    return headers


def _result(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        raise CallError(response.status_code, {"code": "bad_response", "message": response.text[:200]}) from None
    if response.status_code >= 400:
        raise CallError(response.status_code, body.get("error", {}))
    return body


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

    def __getattr__(self, method: str):
        if method.startswith("_"):
            raise AttributeError(method)
        return lambda **kwargs: self.call(method, **kwargs)


class Client:
    def __init__(
        self,
        url: str = "http://127.0.0.1:8000",
        *,
        timeout_s: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.http = httpx.Client(base_url=url, timeout=timeout_s, transport=transport)

    def object(self, class_name: str, name: str) -> ObjectRef:
        return ObjectRef(self, class_name, name)

    def call_status(self, call_id: str) -> dict[str, Any]:
        return _result(self.http.get(f"/v1/calls/{quote(call_id, safe='')}"))

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
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

    async def info(self) -> dict[str, Any]:
        return _result(await self._client.http.get(self._path))

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
        timeout_s: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.http = httpx.AsyncClient(base_url=url, timeout=timeout_s, transport=transport)

    def object(self, class_name: str, name: str) -> AsyncObjectRef:
        return AsyncObjectRef(self, class_name, name)

    async def call_status(self, call_id: str) -> dict[str, Any]:
        return _result(await self.http.get(f"/v1/calls/{quote(call_id, safe='')}"))

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
