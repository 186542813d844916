"""An import's body goes to a temporary file as it arrives: bounded, refused early, always removed.

Each test drives `body_in_temporary_file` with a Starlette request on a scripted ASGI
`receive`, counting the chunks the server asked for, so "refused before the rest was
read" is a count, not a time.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.requests import ClientDisconnect, Request

from solo.api.uploads import body_in_temporary_file
from solo.objects.errors import PayloadTooLarge

TOO_LARGE = "the file is larger than the limit"


@pytest.fixture(autouse=True)
def temporary_dir(tmp_path, monkeypatch) -> Path:
    """The test's own temporary directory, so that what is left in it can be seen."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


class ScriptedBody:
    """An ASGI `receive` that sends `chunks` (then, if `disconnect`, the client goes away)."""

    def __init__(self, chunks: list[bytes], *, disconnect: bool = False) -> None:
        self.chunks = chunks
        self.disconnect = disconnect
        self.sent = 0

    async def __call__(self) -> dict:
        if self.sent < len(self.chunks):
            self.sent += 1
            more = self.sent < len(self.chunks) or self.disconnect
            return {"type": "http.request", "body": self.chunks[self.sent - 1], "more_body": more}
        return {"type": "http.disconnect"}


def request(body: ScriptedBody, content_length: int | None = None) -> Request:
    headers = [] if content_length is None else [(b"content-length", str(content_length).encode())]
    scope = {"type": "http", "method": "PUT", "path": "/", "headers": headers, "query_string": b""}
    return Request(scope, body)


def receive(body: ScriptedBody, limit: int, content_length: int | None = None) -> tuple[bytes, Path]:
    """What the block saw in its file, and the file's path."""

    async def run() -> tuple[bytes, Path]:
        async with body_in_temporary_file(request(body, content_length), limit, TOO_LARGE) as path:
            return path.read_bytes(), path

    return asyncio.run(run())


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def chunks_of(total: int, size: int) -> Iterator[bytes]:
    for start in range(0, total, size):
        yield bytes([start // size % 256]) * min(size, total - start)


def test_the_body_is_in_the_file_while_the_block_runs_and_gone_after(temporary_dir):
    chunks = list(chunks_of(3 * 1024 * 1024 + 5, 64 * 1024))  # more than one write's worth
    seen, path = receive(ScriptedBody(chunks), limit=4 * 1024 * 1024)
    assert seen == b"".join(chunks)
    assert path.parent == temporary_dir
    assert leftovers(temporary_dir) == []


def test_an_empty_body_is_an_empty_file():
    assert receive(ScriptedBody([b""]), limit=10)[0] == b""


def test_a_body_of_exactly_the_limit_is_taken():
    assert receive(ScriptedBody([b"x" * 60, b"y" * 40]), limit=100)[0] == b"x" * 60 + b"y" * 40


def test_a_body_past_the_limit_is_refused_at_the_chunk_that_crosses_it(temporary_dir):
    # Given: a body of 1,000 chunks of 1 KiB without a Content-Length, and a limit of 10 KiB
    body = ScriptedBody([b"z" * 1024] * 1000)

    # When / Then: refused as soon as the 11th chunk arrives; the rest is never asked for
    with pytest.raises(PayloadTooLarge, match=TOO_LARGE):
        receive(body, limit=10 * 1024)
    assert body.sent == 11
    assert leftovers(temporary_dir) == []


def test_a_declared_length_past_the_limit_is_refused_before_anything_is_read(temporary_dir):
    body = ScriptedBody([b"z" * 1024] * 10)
    with pytest.raises(PayloadTooLarge):
        receive(body, limit=1024, content_length=10 * 1024)
    assert body.sent == 0
    assert leftovers(temporary_dir) == []


def test_a_client_that_goes_away_mid_body_leaves_no_file(temporary_dir):
    body = ScriptedBody([b"a" * 4096] * 300, disconnect=True)  # 1.2 MB: part of it was written
    with pytest.raises(ClientDisconnect):
        receive(body, limit=10 * 1024 * 1024)
    assert body.sent == 300
    assert leftovers(temporary_dir) == []


def test_the_file_is_removed_when_the_work_on_it_fails(temporary_dir):
    async def run() -> None:
        async with body_in_temporary_file(request(ScriptedBody([b"data"])), 100, TOO_LARGE) as path:
            assert path.exists()
            raise RuntimeError("the check failed")

    with pytest.raises(RuntimeError, match="the check failed"):
        asyncio.run(run())
    assert leftovers(temporary_dir) == []
