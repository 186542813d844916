"""A real API takes an import's body into a temporary file, and leaves none behind however the import ends.

The API process runs with a TMPDIR of the test's own, so what it leaves there can be
seen: after an import that succeeds, one refused as invalid (422), one refused as too
large while it was still arriving (413), and one whose client went away mid-body.
"""

from __future__ import annotations

import socket
import uuid
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.conftest import wait_until

OCTET = {"Content-Type": "application/octet-stream"}
LIMIT = 4 * 1024 * 1024  # SOLO_MAX_IMPORT_BYTES of the API under test


@pytest.fixture
def api_tmp(tmp_path):
    folder = tmp_path / "api-tmp"
    folder.mkdir()
    return folder


@pytest.fixture
def http(cluster, api_tmp):
    cluster.start_worker()
    cluster.start_api(TMPDIR=str(api_tmp), SOLO_MAX_IMPORT_BYTES=str(LIMIT))
    with httpx.Client(base_url=cluster.url, timeout=60) as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def counter_file(http: httpx.Client) -> bytes:
    source = unique("Counter/src")
    assert http.post(f"/v1/objects/{source}/increment", json={"by": 5}).status_code == 200
    response = http.get(f"/v1/objects/{source}/export")
    assert response.status_code == 200, response.text
    return response.content


def test_imports_that_succeed_or_are_refused_leave_no_temporary_file(http, api_tmp):
    image = counter_file(http)

    # A sound file, sent in pieces without a Content-Length: imported
    target = unique("Counter/imp")
    pieces = iter([image[:1000], image[1000:]])
    response = http.put(f"/v1/objects/{target}/import", content=pieces, headers=OCTET)
    assert response.status_code == 200, response.text
    assert http.post(f"/v1/objects/{target}/get").json()["result"] == 5
    assert leftovers(api_tmp) == []

    # A file that is no database: 422
    response = http.put(f"/v1/objects/{unique('Counter/bad')}/import", content=b"garbage" * 1000, headers=OCTET)
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_image"
    assert leftovers(api_tmp) == []

    # A body past the limit with no Content-Length to announce it: 413 once it crosses the limit
    def endless_enough():
        for _ in range(4 * LIMIT // 65536):
            yield b"\0" * 65536

    response = http.put(f"/v1/objects/{unique('Counter/big')}/import", content=endless_enough(), headers=OCTET)
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
    assert "SOLO_MAX_IMPORT_BYTES" in response.json()["error"]["message"]
    assert leftovers(api_tmp) == []


def test_a_client_that_goes_away_mid_upload_leaves_no_temporary_file(cluster, http, api_tmp):
    # Given: an upload that announced 3 MB and sent 1 MB of it, now in the API's temporary file
    target = unique("Counter/gone")
    address = urlsplit(cluster.url)
    sock = socket.create_connection((address.hostname, address.port))
    head = (
        f"PUT /v1/objects/{target}/import HTTP/1.1\r\nHost: {address.netloc}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {3 * 1024 * 1024}\r\n\r\n"
    )
    sock.sendall(head.encode() + b"\0" * (1024 * 1024))
    wait_until(lambda: leftovers(api_tmp), 30, "the upload's temporary file")

    # When: the client goes away
    sock.close()

    # Then: the file is removed, and nothing was imported
    wait_until(lambda: not leftovers(api_tmp), 30, "the temporary file to be removed")
    assert http.get(f"/v1/objects/{target}").status_code == 404
