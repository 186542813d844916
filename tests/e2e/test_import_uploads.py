"""A real API takes an import's body into a temporary file, and leaves none behind however the import ends.

The API process runs with a TMPDIR of the test's own, so what it leaves there can be
seen: after an import that succeeds, one refused as invalid (422), one refused as too
large while it was still arriving (413), and one whose client went away mid-body.
"""

from __future__ import annotations

import concurrent.futures
import socket
import threading
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


def test_imports_into_one_new_name_at_once_answer_200_or_409_never_500(cluster, http):
    # Given: two different files of a few megabytes (so that imports spend a while in their transaction)
    files = []
    for touches in (1, 2):
        source = unique("Bulky/src")
        assert http.post(f"/v1/objects/{source}/grow", json={"kib": 2 * 1024}).status_code == 200
        for _ in range(touches):
            assert http.post(f"/v1/objects/{source}/touch", json={}).status_code == 200
        files.append(http.get(f"/v1/objects/{source}/export").content)

    # When: pairs of clients import the two files into one new name each, at the same moment
    def import_pair(target: str) -> list[int]:
        barrier = threading.Barrier(2)

        def put(image: bytes) -> int:
            with httpx.Client(base_url=cluster.url, timeout=60) as own:
                barrier.wait()
                response = own.put(f"/v1/objects/{target}/import", content=image, headers=OCTET)
                assert response.status_code in (200, 409), response.text
                if response.status_code == 409:
                    assert response.json()["error"]["code"] == "conflict"
                return response.status_code

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            return list(pool.map(put, files))

    pairs = {unique("Bulky/twice"): None for _ in range(6)}
    for target in pairs:
        pairs[target] = import_pair(target)

    # Then: each pair has a winner, whose file is the state (both won only when one came after the
    # other: then the later one replaced the earlier, as any import does); and some pairs collided
    for target, statuses in pairs.items():
        assert 200 in statuses, (target, statuses)
        touched = http.post(f"/v1/objects/{target}/touch", json={}).json()["result"]
        if statuses == [200, 409]:
            assert touched == 2  # the first file's state (one touch), touched once more
        elif statuses == [409, 200]:
            assert touched == 3
    print("statuses of each pair:", list(pairs.values()))
    assert any(409 in statuses for statuses in pairs.values()), pairs
