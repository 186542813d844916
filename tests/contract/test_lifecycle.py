"""An object's operator lifecycle over HTTP and the CLI, on both backends.

Export streams the state as a plain .sqlite file; import replaces the state
with one; restore returns the object to an earlier sequence or time; delete
removes the state so that the next call starts empty. Each is served from the
shared database, and a current owner is fenced: the next call sees the new
state, also when the object was active on a worker.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import sqlite3
import time
import uuid
from pathlib import Path

import pytest

from solo.api.client import AsyncClient, Client
from solo.cli.main import main as solo
from solo.testing.inprocess import InProcessSystem
from tests.contract.test_client import serving

OCTET = {"Content-Type": "application/octet-stream"}


def unique() -> str:
    return uuid.uuid4().hex


def path(class_name: str, name: str, action: str | None = None) -> str:
    base = f"/v1/objects/{class_name}/{name}"
    return f"{base}/{action}" if action else base


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"], error
    return error


def call(http, name: str, method: str, **kwargs):
    response = http.post(path("Counter", name, method), json=kwargs)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def seq_of(http, class_name: str, name: str) -> int:
    response = http.get(path(class_name, name))
    assert response.status_code == 200, response.text
    return response.json()["seq"]


def export(http, name: str) -> bytes:
    response = http.get(path("Counter", name, "export"))
    assert response.status_code == 200, response.text
    return response.content


def import_(http, name: str, image: bytes) -> int:
    response = http.put(path("Counter", name, "import"), content=image, headers=OCTET)
    assert response.status_code == 200, response.text
    return response.json()["seq"]


def restore(http, name: str, **point) -> dict:
    response = http.post(path("Counter", name, "restore"), json=point)
    assert response.status_code == 200, response.text
    return response.json()


def open_image(image: bytes, tmp_path: Path) -> sqlite3.Connection:
    """The file as any SQLite tool would open it: from disk, no WAL."""
    file = tmp_path / f"{unique()}.sqlite"
    file.write_bytes(image)
    return sqlite3.connect(file)


def counter_in(image: bytes, tmp_path: Path) -> int:
    conn = open_image(image, tmp_path)
    try:
        return conn.execute("SELECT value FROM counter").fetchone()[0]
    finally:
        conn.close()


def dump_without_epoch(image: bytes, tmp_path: Path) -> list[str]:
    conn = open_image(image, tmp_path)
    try:
        return [line for line in conn.iterdump() if "'epoch'" not in line]
    finally:
        conn.close()


@pytest.fixture
def system(settings, redis_client, async_redis_client) -> InProcessSystem:
    return InProcessSystem(settings, redis_client, async_redis_client)


@pytest.fixture
def http(system):
    with system.running() as client:
        yield client


# -- export and import --------------------------------------------------------------


def test_export_then_import_elsewhere_gives_the_same_database(http, tmp_path):
    source, copy, copy_of_copy = unique(), unique(), unique()
    call(http, source, "increment", by=40)
    call(http, source, "increment", by=2)

    response = http.get(path("Counter", source, "export"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].startswith(f'attachment; filename="Counter-{source}.sqlite"')
    assert int(response.headers["solo-seq"]) == seq_of(http, "Counter", source)
    image = response.content
    assert int(response.headers["content-length"]) == len(image)
    assert image[18:20] == b"\x01\x01"  # a rollback-journal file: opens anywhere without its WAL
    conn = open_image(image, tmp_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()
    assert counter_in(image, tmp_path) == 42

    # Importing into a name that never existed creates the object with that state.
    assert_error(http.get(path("Counter", copy)), 404, "object_not_found")
    seq = import_(http, copy, image)
    assert seq_of(http, "Counter", copy) == seq
    copied = export(http, copy)
    # The same database; only the source's fencing epoch is not carried over.
    assert dump_without_epoch(copied, tmp_path) == dump_without_epoch(image, tmp_path)
    assert any("'epoch'" in line for line in open_image(image, tmp_path).iterdump())
    assert not any("'epoch'" in line for line in open_image(copied, tmp_path).iterdump())
    # A file without an epoch goes through byte for byte.
    import_(http, copy_of_copy, copied)
    assert export(http, copy_of_copy) == copied

    assert call(http, copy, "get") == 42
    assert call(http, copy, "increment") == 43
    assert seq_of(http, "Counter", copy) > seq
    assert call(http, source, "get") == 42  # the source is untouched


def test_import_replaces_the_state_of_an_object_active_on_a_worker(http, system):
    source, target = unique(), unique()
    call(http, source, "increment", by=42)
    image = export(http, source)
    assert call(http, target, "increment", by=1) == 1
    info = http.get(path("Counter", target)).json()
    assert info["active"] is True and info["owner"] == system.host.worker_id

    before = info["seq"]
    seq = import_(http, target, image)
    assert seq > before
    assert call(http, target, "get") == 42  # the owner is fenced; the object re-hydrates
    assert call(http, target, "increment") == 43
    assert http.get(path("Counter", target)).json()["epoch"] > info["epoch"]


def test_a_file_from_an_object_with_a_higher_epoch_imports_into_a_new_one(http):
    source, target = unique(), unique()
    call(http, source, "increment", by=5)
    for _ in range(6):  # each restore and the activation after it move the source's epoch on
        restore(http, source, seq=seq_of(http, "Counter", source))
        call(http, source, "get")
    source_epoch = http.get(path("Counter", source)).json()["epoch"]
    assert source_epoch > 10
    import_(http, target, export(http, source))
    assert http.get(path("Counter", target)).json()["epoch"] < source_epoch
    assert call(http, target, "increment") == 6


def test_import_of_a_bad_file_is_422_and_changes_nothing(http, tmp_path):
    source, existing, fresh = unique(), unique(), unique()
    call(http, source, "increment", by=3)
    image = export(http, source)
    call(http, existing, "increment", by=7)
    seq = seq_of(http, "Counter", existing)

    # A schema newer than this code: more migrations than Counter has.
    file = tmp_path / "newer.sqlite"
    file.write_bytes(image)
    conn = sqlite3.connect(file)
    conn.execute("UPDATE _solo_meta SET value = 3 WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    newer = file.read_bytes()

    corrupt = bytearray(image)
    page_size = int.from_bytes(image[16:18], "big")
    corrupt[page_size + 8 : 2 * page_size] = b"\xff" * (page_size - 8)  # page 2's cells

    bad_files = {
        "garbage": b"this is not a database" * 100,
        "empty": b"",
        "header only": image[:100],
        "corrupt page": bytes(corrupt),
        "newer schema": newer,
    }
    for what, body in bad_files.items():
        for name in (existing, fresh):
            response = http.put(path("Counter", name, "import"), content=body, headers=OCTET)
            assert response.status_code == 422, f"{what}: {response.status_code} {response.text}"
            error = assert_error(response, 422, "invalid_image")
            if what == "newer schema":
                assert "schema version 3" in error["message"]
    assert call(http, existing, "get") == 7
    assert seq_of(http, "Counter", existing) > seq  # the call above committed; the imports did not
    assert_error(http.get(path("Counter", fresh)), 404, "object_not_found")


def test_import_needs_the_octet_stream_content_type(http):
    source, existing, fresh = unique(), unique(), unique()
    call(http, source, "increment", by=3)
    image = export(http, source)
    call(http, existing, "increment", by=7)
    for headers in ({"Content-Type": "application/json"}, {"Content-Type": "text/plain"}, {}):
        for name in (existing, fresh):
            response = http.put(path("Counter", name, "import"), content=image, headers=headers)
            assert_error(response, 415, "unsupported_media_type")
    # Parameters of the media type are fine.
    response = http.put(
        path("Counter", fresh, "import"), content=image, headers={"Content-Type": "Application/Octet-Stream; x=1"}
    )
    assert response.status_code == 200, response.text
    assert call(http, existing, "get") == 7
    assert call(http, fresh, "get") == 3


def test_import_larger_than_the_limit_is_413(http, system):
    source, fresh = unique(), unique()
    call(http, source, "increment")
    image = export(http, source)
    system.app.state.api.operations.max_import_bytes = len(image) - 1
    assert_error(http.put(path("Counter", fresh, "import"), content=image, headers=OCTET), 413, "payload_too_large")
    chunks = iter([image[:1000], image[1000:]])  # no Content-Length: the limit holds while reading
    assert_error(http.put(path("Counter", fresh, "import"), content=chunks, headers=OCTET), 413, "payload_too_large")
    assert_error(http.get(path("Counter", fresh)), 404, "object_not_found")
    system.app.state.api.operations.max_import_bytes = len(image)
    import_(http, fresh, image)


def test_export_of_an_object_without_state_is_404(http):
    name = unique()
    assert_error(http.get(path("Counter", name, "export")), 404, "object_not_found")
    assert_error(http.get(path("NoSuchClass", name, "export")), 404, "unknown_class")
    assert_error(http.get(path("Counter", "%20x", "export")), 400, "invalid_name")
    assert_error(http.put(path("NoSuchClass", name, "import"), content=b"x", headers=OCTET), 404, "unknown_class")
    assert_error(http.get(path("Counter", name)), 404, "object_not_found")


# -- restore --------------------------------------------------------------------


def test_restore_to_an_earlier_sequence(http):
    name = unique()
    seqs = {}
    for value in (1, 2, 3):
        assert call(http, name, "increment") == value
        seqs[value] = seq_of(http, "Counter", name)

    restored = restore(http, name, seq=seqs[1])
    assert restored["restored_from"] == seqs[1]
    assert restored["seq"] == seq_of(http, "Counter", name) > seqs[3]
    assert call(http, name, "get") == 1
    assert call(http, name, "increment") == 2
    # The history before a restore stays restorable.
    restore(http, name, seq=seqs[3])
    assert call(http, name, "get") == 3
    restore(http, name, seq=restored["seq"])
    assert call(http, name, "get") == 1


def test_restore_to_a_time(http):
    name = unique()
    call(http, name, "increment", by=1)
    after_first = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    call(http, name, "increment", by=10)
    after_second = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    call(http, name, "increment", by=100)

    restore(http, name, at=after_first.isoformat())
    assert call(http, name, "get") == 1
    # "Z", another offset, and no offset (UTC) all name the same instant.
    restore(http, name, at=after_second.isoformat().replace("+00:00", "Z"))
    assert call(http, name, "get") == 11
    restore(http, name, at=after_first.astimezone(dt.timezone(dt.timedelta(hours=-5))).isoformat())
    assert call(http, name, "get") == 1
    restore(http, name, at=after_second.replace(tzinfo=None).isoformat())
    assert call(http, name, "get") == 11


def test_restore_to_a_time_just_after_an_import(http):
    source, name = unique(), unique()
    call(http, source, "increment", by=42)
    call(http, name, "increment", by=1)
    import_(http, name, export(http, source))
    after_import = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    call(http, name, "increment")
    restore(http, name, at=after_import.isoformat())
    assert call(http, name, "get") == 42


def test_restore_outside_the_retention_window_or_with_bad_input_is_422(http):
    name = unique()
    call(http, name, "increment", by=5)
    head = seq_of(http, "Counter", name)

    for point in ({"seq": 0}, {"seq": -1}, {"seq": head + 1}, {"seq": 10**30}, {"at": "2000-01-01T00:00:00Z"}):
        error = assert_error(http.post(path("Counter", name, "restore"), json=point), 422, "out_of_retention")
        assert f"sequences 1 to {head} can be restored" in error["message"], error
    bad_bodies = [
        b"",
        b"{",
        b"[]",
        b"{}",
        b'{"seq": 1, "at": "2024-01-01T00:00:00Z"}',
        b'{"seq": "1"}',
        b'{"seq": 1.0}',
        b'{"seq": true}',
        b'{"seq": null}',
        b'{"at": "yesterday"}',
        b'{"at": 5}',
        b'{"when": 1}',
    ]
    for body in bad_bodies:
        response = http.post(path("Counter", name, "restore"), content=body)
        assert response.status_code == 422, f"{body!r}: {response.text}"
        assert_error(response, 422, "invalid_arguments")
    assert seq_of(http, "Counter", name) == head
    assert call(http, name, "get") == 5
    assert_error(http.post(path("Counter", unique(), "restore"), json={"seq": 1}), 404, "object_not_found")


# -- delete -----------------------------------------------------------------------


def test_delete_removes_the_state_and_the_next_call_starts_empty(http, system):
    name = unique()
    assert call(http, name, "increment", by=5) == 5
    assert http.get(path("Counter", name)).json()["active"] is True

    response = http.delete(path("Counter", name))
    assert response.status_code == 200, response.text
    assert response.json() == {"deleted": True}
    assert_error(http.get(path("Counter", name)), 404, "object_not_found")
    assert_error(http.get(path("Counter", name, "export")), 404, "object_not_found")
    assert_error(http.post(path("Counter", name, "restore"), json={"seq": 1}), 404, "object_not_found")
    assert_error(http.delete(path("Counter", name)), 404, "object_not_found")

    assert call(http, name, "increment") == 1  # the former owner is fenced; a fresh object answers
    assert seq_of(http, "Counter", name) >= 1
    assert_error(http.delete(path("Counter", unique())), 404, "object_not_found")
    assert_error(http.delete(path("NoSuchClass", name)), 404, "unknown_class")


# -- metadata and the OpenAPI document -------------------------------------------------


def test_metadata_shows_the_sequence_and_openapi_lists_the_lifecycle(http):
    name = unique()
    call(http, name, "increment")
    first = seq_of(http, "Counter", name)
    assert first >= 1
    call(http, name, "increment")
    assert seq_of(http, "Counter", name) == first + 1

    paths = http.get("/openapi.json").json()["paths"]
    assert "delete" in paths["/v1/objects/{class}/{name}"]
    assert "get" in paths["/v1/objects/{class}/{name}/export"]
    assert "application/octet-stream" in paths["/v1/objects/{class}/{name}/import"]["put"]["requestBody"]["content"]
    assert "post" in paths["/v1/objects/{class}/{name}/restore"]


# -- the Python client and the CLI ------------------------------------------------------


def test_the_client_and_the_cli_export_import_restore_and_delete(
    settings, redis_client, async_redis_client, tmp_path, capsys
):
    system = InProcessSystem(settings, redis_client, async_redis_client)
    source, target = unique(), unique()
    with serving(system) as url, Client(url) as client:
        counter = client.object("Counter", source)
        counter.increment(by=40)
        counter.increment(by=2)

        file = tmp_path / "out" / "counter.sqlite"
        file.parent.mkdir()
        assert solo(["objects", "export", f"Counter/{source}", str(file), "--url", url, "--progress"]) == 0
        out, err = capsys.readouterr()
        printed = json.loads(out)
        assert printed["bytes"] == file.stat().st_size and printed["seq"] == counter.info()["seq"]
        assert "100%" in err and "\r" in err
        assert counter_in(file.read_bytes(), tmp_path) == 42
        assert [p.name for p in file.parent.iterdir()] == ["counter.sqlite"]  # no partial file left behind

        assert solo(["objects", "import", f"Counter/{target}", str(file), "--url", url]) == 0
        out, err = capsys.readouterr()
        assert json.loads(out)["seq"] == client.object("Counter", target).info()["seq"]
        assert err == ""  # no bar when stderr is not a terminal
        assert client.object("Counter", target).get() == 42

        # The same through the client, streaming both ways.
        buffer = io.BytesIO()
        seen: list[tuple[int, int | None]] = []
        seq = client.object("Counter", target).export_to(buffer, progress=lambda d, t: seen.append((d, t)))
        assert seq == client.object("Counter", target).info()["seq"]
        assert seen[0] == (0, len(buffer.getvalue())) and seen[-1] == (len(buffer.getvalue()),) * 2
        assert buffer.getvalue() == client.object("Counter", target).export()
        other = client.object("Counter", unique())
        buffer.seek(0)
        other.import_from(buffer, size=len(buffer.getvalue()))
        assert other.get() == 42
        assert other.import_(file.read_bytes()) > 0

        async def with_the_async_client() -> None:
            async with AsyncClient(url) as aclient:
                ref = aclient.object("Counter", unique())
                seq = await ref.import_(file.read_bytes())
                assert await ref.get() == 42
                assert counter_in(await ref.export(), tmp_path) == 42
                await ref.increment()
                assert (await ref.restore(seq=seq))["restored_from"] == seq
                assert await ref.get() == 42
                assert await ref.delete() is True
                assert await ref.delete() is False

        asyncio.run(with_the_async_client())

        first = counter.info()["seq"]
        counter.increment(by=100)
        assert solo(["objects", "restore", f"Counter/{source}", "--seq", str(first), "--url", url]) == 0
        assert json.loads(capsys.readouterr().out)["restored_from"] == first
        assert counter.get() == 42
        assert counter.restore(at=dt.datetime.now(dt.UTC))["restored_from"] == counter.info()["seq"] - 1

        assert solo(["objects", "delete", f"Counter/{source}", "--yes", "--url", url]) == 0
        assert json.loads(capsys.readouterr().out) == {"deleted": True}
        assert solo(["objects", "delete", f"Counter/{source}", "--yes", "--url", url]) == 1
        assert json.loads(capsys.readouterr().err)["error"]["code"] == "object_not_found"
        assert counter.delete() is False
        assert solo(["objects", "export", f"Counter/{source}", str(tmp_path / "gone.sqlite"), "--url", url]) == 1
        assert not (tmp_path / "gone.sqlite").exists()
        assert counter.increment() == 1
