"""Imported files are untrusted: their solo tables are checked, and every solo row parsed, before use.

Each hostile file starts as a real object's database, written by solo itself,
and is then edited with sqlite3. A file solo wrote imports as it is (less its
epoch stamp); one with anything foreign on solo's tables, or a row solo could
not have written for the class, is refused naming the table and the problem.
The worker, reading an outbox that got into its state some other way, drops
the bad entries instead of sending them.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import uuid
from pathlib import Path

import pytest

from solo import DurableObject, rpc
from solo.objects.calls import Call
from solo.objects.errors import InvalidImage, InvalidRow
from solo.objects.naming import Address, is_call_id, is_object_id, new_call_id, object_id
from solo.objects.registry import registry
from solo.objects.runtime.activation import object_path
from solo.objects.runtime.instance import ObjectInstance
from solo.objects.state import image_rows
from solo.objects.state.admin import StateAdmin
from solo.objects.state.images import CheckedImport, Rules, check_import, check_schema_of, without_epoch_stamp
from solo.objects.state.migrate import upgrade
from solo.objects.state.schema import make_engine
from solo.objects.state.store import StateStore
from solo.workers.transport import MailboxTransport, ReplyWaiter
from tests.objects import Tally  # noqa: F401  (registers the target class)

NAMESPACE = "test"
SENT = "o" + "a" * 31


class Importable(DurableObject):
    """Writes a row to each of solo's tables: a send, an alarm, a schedule, storage, call records."""

    migrations = ["CREATE TABLE notes (text TEXT NOT NULL)", "CREATE INDEX notes_by_text ON notes (text)"]

    def alarm(self, info) -> None:
        pass

    @rpc
    def fill(self, tally: str) -> None:
        self.sql.execute("INSERT INTO notes VALUES ('hello')")
        self.storage.put("config", {"a": [1, 2]})
        self.storage.set_alarm(2_000_000_000_000)
        self.schedule("nightly", "note", cron="0 3 * * *", kwargs={"text": "night"})
        self.objects.get("Tally", tally).send.add(tag="sent")

    @rpc
    def note(self, text: str) -> None:
        self.sql.execute("INSERT INTO notes VALUES (?)", (text,))

    def helper(self) -> None:
        """A public method that is no @rpc: schedules may call it."""


RULES = Rules(Importable, NAMESPACE, registry())


@pytest.fixture
def image(tmp_path) -> bytes:
    """A database exactly as solo wrote it, with an unsent send still in its outbox."""
    name = uuid.uuid4().hex
    instance = ObjectInstance(
        Importable,
        object_id=object_id(NAMESPACE, "Importable", name),
        name=name,
        path=tmp_path / f"{name}.sqlite",
        epoch=3,
        namespace=NAMESPACE,
    )
    instance.hydrate()
    call = Call(new_call_id(), instance.object_id, "Importable", name, "fill", {"tally": "t1"})
    assert instance.run_batch([call]).outcomes[0].ok
    instance.close()
    return (tmp_path / f"{name}.sqlite").read_bytes()


def edited(image: bytes, *statements: str | tuple[str, tuple]) -> bytes:
    conn = sqlite3.connect(":memory:")
    conn.deserialize(image[:18] + b"\x01\x01" + image[20:])
    for statement in statements:
        sql, params = (statement, ()) if isinstance(statement, str) else statement
        conn.execute(sql, params)
    conn.commit()
    data = conn.serialize()
    conn.close()
    return data


def check(image: bytes) -> tuple[CheckedImport, bytes]:
    """check_import on a file of `image` (as an upload is), and that file after it: what is stored."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload"
        path.write_bytes(image)
        checked = check_import(path, RULES)
        return checked, path.read_bytes()


def refused(image: bytes, *words: str) -> str:
    with pytest.raises(InvalidImage) as caught:
        check(image)
    for word in words:
        assert word in caught.value.message, caught.value.message
    return caught.value.message


def sent(call: Call) -> tuple[str, tuple]:
    return ("INSERT INTO _solo_outbox (call_id, call, created_ms) VALUES (?, ?, 0)", (call.call_id, call.to_json()))


def to_tally(name: str = "t9", **changes) -> Call:
    fields = dict(
        call_id=SENT,
        object_id=object_id(NAMESPACE, "Tally", name),
        class_name="Tally",
        object_name=name,
        method="add",
        args={"tag": "x"},
    )
    return Call(**{**fields, **changes})


# -- a file solo wrote --------------------------------------------------------------------


def test_a_file_solo_wrote_imports_unchanged_but_its_epoch_with_its_rows_parsed(image):
    checked, stored = check(image)
    assert checked.schema_version == 2
    (call,) = checked.outbox
    assert (call.class_name, call.object_name, call.method, call.args) == ("Tally", "t1", "add", {"tag": "sent"})
    assert call.object_id == object_id(NAMESPACE, "Tally", "t1") and call.reply_to is None
    assert sorted((a.name, a.method) for a in checked.alarms) == [("_alarm", "alarm"), ("nightly", "note")]
    conn = sqlite3.connect(":memory:")
    conn.deserialize(stored)
    assert conn.execute("SELECT key, value FROM _solo_meta").fetchall() == [("schema_version", 2)]
    conn.close()
    # Without an epoch, the file goes through byte for byte.
    assert check(stored)[1] == stored


def test_an_upload_is_checked_where_it_lies_and_nothing_is_made_beside_it(image, tmp_path):
    # Given: a worker's file, marked WAL and stamped with its epoch, as the only file of a folder
    assert image[18:20] == b"\x02\x02"
    folder = tmp_path / "upload"
    folder.mkdir()
    upload = folder / "file"
    upload.write_bytes(image)

    # When: it is checked (and its stamp removed) in place
    check_import(upload, RULES)

    # Then: no journal, log or shared-memory file was made; the file is a rollback-journal one
    assert [p.name for p in folder.iterdir()] == ["file"]
    stored = upload.read_bytes()
    assert stored[18:20] == b"\x01\x01"
    assert len(stored) == len(image)


def test_user_tables_keep_their_own_triggers_and_views(image):
    mine = edited(
        image,
        "CREATE TABLE audit (text TEXT)",
        "CREATE TRIGGER notes_audit AFTER INSERT ON notes BEGIN INSERT INTO audit VALUES (new.text); END",
        "CREATE VIEW loud AS SELECT upper(text) FROM notes",
    )
    assert check(mine)[0].schema_version == 2


def test_a_file_without_solo_tables_imports():
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE notes (text TEXT NOT NULL)")
    plain = conn.serialize()
    conn.close()
    checked, stored = check(plain)
    assert (checked.schema_version, checked.alarms, checked.outbox, stored) == (0, [], [], plain)


# -- schema objects on solo's tables -----------------------------------------------------------

ENDLESS = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"


@pytest.mark.parametrize("table", ["_solo_meta", "_solo_calls", "_solo_kv", "_solo_outbox", "_solo_alarms"])
@pytest.mark.parametrize("when", ["BEFORE DELETE", "AFTER INSERT", "AFTER UPDATE"])
def test_a_trigger_on_any_solo_table_is_refused_without_running(image, table, when):
    hostile = edited(image, f"CREATE TRIGGER spin {when} ON {table} BEGIN {ENDLESS}; END")
    refused(hostile, "trigger 'spin'", table)  # returns at all: the endless trigger never ran
    with pytest.raises(InvalidImage, match="trigger"):
        without_epoch_stamp(hostile)  # its DELETE is never run on such a file
    with pytest.raises(InvalidImage, match="trigger"):
        check_schema_of(hostile)  # nor restored


@pytest.mark.parametrize(
    ("statement", "words"),
    [
        ("CREATE TRIGGER t AFTER INSERT ON notes BEGIN DELETE FROM _solo_calls; END", ("trigger 't'", "refers")),
        ('CREATE TRIGGER t AFTER INSERT ON notes BEGIN DELETE FROM "_SOLO_KV"; END', ("trigger 't'", "refers")),
        ("CREATE VIEW v AS SELECT * FROM _solo_kv", ("view 'v'", "refers")),
        ("CREATE TABLE fk (id TEXT REFERENCES _solo_calls (call_id) ON DELETE CASCADE)", ("table 'fk'", "refers")),
        ("CREATE INDEX _solo_calls_by_payload ON _solo_calls (payload)", ("index '_solo_calls_by_payload'",)),
        ("CREATE INDEX mine ON _solo_kv (value)", ("index 'mine' on _solo_kv",)),
        ("CREATE TABLE _solo_extra (x)", ("table '_solo_extra'",)),
        ("CREATE VIEW _solo_view AS SELECT 1", ("view '_solo_view'",)),
    ],
)
def test_schema_objects_solo_does_not_create_on_or_naming_its_tables_are_refused(image, statement, words):
    refused(edited(image, statement), *words)


def test_a_solo_table_not_as_solo_creates_it_is_refused(image):
    hostile = edited(
        image,
        "DROP TABLE _solo_kv",
        "CREATE TABLE _solo_kv (key TEXT PRIMARY KEY, value TEXT NOT NULL DEFAULT (randomblob(9)))",
    )
    refused(hostile, "solo's table _solo_kv is not as solo creates it")
    view = edited(image, "DROP TABLE _solo_kv", "CREATE VIEW _solo_kv AS SELECT 'k' AS key, '1' AS value")
    refused(view, "_solo_kv")


def test_files_that_are_not_sound_databases_are_refused(image):
    for bad in (b"", b"garbage" * 100, image[:100], image[: len(image) // 2]):
        with pytest.raises(InvalidImage):
            check(bad)


# -- _solo_meta -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [-1, 1.5, "one", b"\x02"])
def test_a_schema_version_that_is_not_an_integer_from_zero_is_refused(image, version):
    statement = ("UPDATE _solo_meta SET value = ? WHERE key = 'schema_version'", (version,))
    refused(edited(image, statement), "_solo_meta", "schema_version")


def test_metadata_solo_does_not_keep_is_refused(image):
    refused(edited(image, "INSERT INTO _solo_meta VALUES ('owner', 1)"), "_solo_meta", "unknown key 'owner'")


def test_a_schema_version_within_the_class_s_migrations_is_kept(image):
    for version in (0, 1, 2):
        changed = edited(image, ("UPDATE _solo_meta SET value = ? WHERE key = 'schema_version'", (version,)))
        assert check(changed)[0].schema_version == version
    newer = edited(image, "UPDATE _solo_meta SET value = 3 WHERE key = 'schema_version'")
    refused(newer, "schema version 3", "knows 2 migrations")


def test_parse_meta_rules():
    assert image_rows.parse_meta([("epoch", 9), ("schema_version", 2)], 2) == 2
    assert image_rows.parse_meta([], 0) == 0
    for rows in ([("schema_version", True)], [("schema_version", -3)], [("other", 1)], [(b"epoch", 1)]):
        with pytest.raises(InvalidRow, match="_solo_meta"):
            image_rows.parse_meta(rows, 5)


# -- _solo_calls ------------------------------------------------------------------------------


def _payload(call_id: str, **changes) -> str:
    data = {"call_id": call_id, "ok": True, "result": {"x": 1}, "error": None, **changes}
    return json.dumps(data)


def test_recorded_outcomes_must_be_outcomes_of_well_formed_call_ids(image):
    good = new_call_id()
    assert image_rows.parse_call_record(good, _payload(good), 5).result == {"x": 1}
    failure = _payload(good, ok=False, result=None, error={"code": "c", "message": "m", "status": 409, "type": "T"})
    assert image_rows.parse_call_record(good, failure, 5).error["status"] == 409
    deep = "[" * 100_000 + "]" * 100_000
    bad = [
        ("../../x", _payload("../../x"), 5, "call_id"),
        (good, "not json", 5, "not JSON"),
        (good, deep, 5, "not JSON"),
        (good, b"{}", 5, "JSON text"),
        (good, _payload(new_call_id()), 5, "outcome of"),
        (good, _payload(good, ok="yes"), 5, "ok must be"),
        (good, _payload(good, extra=1), 5, "not a recorded outcome"),
        (good, _payload(good, ok=False, error={"message": "m"}), 5, "code and a message"),
        (good, _payload(good, ok=False, error={"code": "c", "message": "m", "status": 200}), 5, "status"),
        (good, _payload(good, ok=False, error={"code": "c", "message": "m", "target": "x"}), 5, "code and a message"),
        (good, _payload(good, error={"code": "c", "message": "m"}), 5, "no error"),
        (good, _payload(good), -1, "finished_ms"),
        (good, _payload(good), "5", "finished_ms"),
    ]
    for call_id, payload, finished_ms, words in bad:
        with pytest.raises(InvalidRow, match=words) as caught:
            image_rows.parse_call_record(call_id, payload, finished_ms)
        assert caught.value.table == "_solo_calls"
    # In a file
    row = ("INSERT INTO _solo_calls VALUES (?, ?, 1)", ("k" + "0" * 31, _payload("other")))
    refused(edited(image, row), "_solo_calls", "outcome of")


# -- _solo_kv ---------------------------------------------------------------------------------


def test_storage_entries_need_text_keys_and_json_values(image):
    assert image_rows.parse_kv("k", '{"a": 1}') == ("k", {"a": 1})
    for key, value, words in [(b"k", "1", "not text"), ("k", "{nope", "not JSON"), ("k", b"1", "JSON text")]:
        with pytest.raises(InvalidRow, match=words):
            image_rows.parse_kv(key, value)
    refused(edited(image, "INSERT INTO _solo_kv VALUES ('broken', '{')"), "_solo_kv", "'broken'", "not JSON")
    refused(edited(image, ("INSERT INTO _solo_kv VALUES (?, '1')", (b"\x00",))), "_solo_kv", "not text")


# -- _solo_outbox -----------------------------------------------------------------------------


def test_a_sent_call_solo_could_have_written_is_parsed_into_a_call():
    call = image_rows.parse_sent_call(to_tally().to_json(), NAMESPACE, registry())
    assert call == to_tally()


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (to_tally(object_id="/tmp/victim"), "object_id '/tmp/victim'"),
        (to_tally(object_id="../../outside/x"), "object_id '../../outside/x'"),
        (to_tally(object_id=object_id(NAMESPACE, "Tally", "someone-else")), "not the id of Tally/t9"),
        (to_tally(object_id=object_id("other-namespace", "Tally", "t9")), "in this deployment"),
        (to_tally(object_id=object_id(NAMESPACE, "Tally", "t9").upper()), "object_id"),
        (to_tally(reply_to="victim-key"), "reply_to must be empty"),
        (to_tally(call_id=new_call_id()), "not the id of a sent call"),
        (to_tally(call_id="o" + "0" * 30 + "}"), "not the id of a sent call"),
        (to_tally(call_id="k" + "0" * 31), "not the id of a sent call"),
        (to_tally(chain=["Relay/a", 3]), "chain"),
        (to_tally(chain="Relay/a"), "chain"),
        (to_tally(args=[1]), "args"),
        (to_tally(enqueued_ms=-5), "enqueued_ms"),
        (to_tally(method="__class__"), "no rpc method '__class__'"),
        (to_tally(method="no_such"), "no rpc method"),
        (to_tally(class_name="NoSuchClass", object_id=object_id(NAMESPACE, "NoSuchClass", "t9")), "NoSuchClass"),
        (to_tally(class_name="../x"), "class name"),
        (to_tally(name="a/b", object_id=object_id(NAMESPACE, "Tally", "a/b")), "object name"),
    ],
)
def test_a_sent_call_that_names_anything_solo_did_not_compute_is_refused(image, call, words):
    with pytest.raises(InvalidRow, match="_solo_outbox") as caught:
        image_rows.parse_sent_call(call.to_json(), NAMESPACE, registry())
    assert words in caught.value.message
    refused(edited(image, sent(call)), "_solo_outbox", words)


def test_an_outbox_row_must_be_a_call_and_carry_its_call_s_id(image):
    good = to_tally().to_json()
    for raw, words in [
        ("[]", "JSON object"),
        ("{", "not JSON"),
        (json.dumps({**json.loads(good), "crashes": 3}), "unknown ['crashes']"),
        (json.dumps({k: v for k, v in json.loads(good).items() if k != "object_id"}), "missing ['object_id']"),
    ]:
        with pytest.raises(InvalidRow, match="_solo_outbox") as caught:
            image_rows.parse_sent_call(raw, NAMESPACE, registry())
        assert words in caught.value.message
        refused(edited(image, ("INSERT INTO _solo_outbox (call_id, call, created_ms) VALUES (?, ?, 0)", (SENT, raw))))
    other = ("INSERT INTO _solo_outbox (call_id, call, created_ms) VALUES (?, ?, 0)", ("o" + "b" * 31, good))
    refused(edited(image, other), "_solo_outbox", "not its call's")


# -- _solo_alarms -----------------------------------------------------------------------------


def _alarm_row(**changes) -> tuple:
    row = dict(
        name="evil",
        method="note",
        kwargs='{"text": "x"}',
        start_ms=0,
        every_ms=1000,
        cron=None,
        missed="fire_once",
        grace_ms=0,
        scheduled_ms=0,
        next_ms=0,
        retry_count=0,
        failures=0,
        last_error=None,
        last_error_ms=None,
        last_fired_ms=None,
        created_ms=0,
    )
    row.update(changes)
    return tuple(row.values())


def test_an_alarm_row_as_solo_writes_it_is_parsed():
    row = image_rows.parse_alarm(_alarm_row(), Importable)
    assert (row.name, row.method, row.kwargs, row.recurrence.every_ms) == ("evil", "note", {"text": "x"}, 1000)
    assert image_rows.parse_alarm(_alarm_row(method="helper", kwargs="{}"), Importable).method == "helper"
    single = _alarm_row(name="_alarm", method="alarm", kwargs="{}", every_ms=None)
    assert image_rows.parse_alarm(single, Importable).kind == "alarm"


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"method": "__class__", "kwargs": "{}"}, "'__class__'"),
        ({"method": "_solo_ctx"}, "'_solo_ctx'"),
        ({"method": "on_start", "kwargs": "{}"}, "'on_start'"),
        ({"method": "alarm", "kwargs": "{}"}, "'alarm'"),
        ({"method": "no_such_method"}, "no method 'no_such_method'"),
        ({"kwargs": '{"nope": 1}'}, "kwargs do not fit note"),
        ({"kwargs": "[1]"}, "JSON object"),
        ({"kwargs": "{"}, "not JSON"),
        ({"name": "_evil"}, "schedule name"),
        ({"name": "_alarm"}, "alarm() with no kwargs"),
        ({"name": "_alarm", "method": "alarm", "kwargs": "{}"}, "fires once"),
        ({"every_ms": 0}, "every_ms"),
        ({"every_ms": None, "cron": "every day"}, "cron"),
        ({"cron": "0 3 * * *"}, "not both"),
        ({"missed": "never"}, "missed"),
        ({"grace_ms": -1}, "grace_ms"),
        ({"start_ms": "zero"}, "start_ms"),
        ({"next_ms": 1.5}, "next_ms"),
        ({"scheduled_ms": -2}, "scheduled_ms"),
        ({"retry_count": 99}, "retry_count"),
        ({"failures": -1}, "failures"),
        ({"last_error": b"x"}, "last_error"),
        ({"last_fired_ms": "yesterday"}, "last_fired_ms"),
        ({"created_ms": None}, "created_ms"),
    ],
)
def test_an_alarm_row_solo_would_not_write_is_refused(image, changes, words):
    with pytest.raises(InvalidRow, match="_solo_alarms") as caught:
        image_rows.parse_alarm(_alarm_row(**changes), Importable)
    assert words in caught.value.message
    columns = image_rows.ALARM_COLUMNS
    marks = ",".join("?" * len(columns.split(",")))
    try:
        hostile = edited(image, (f"INSERT INTO _solo_alarms ({columns}) VALUES ({marks})", _alarm_row(**changes)))
    except sqlite3.IntegrityError:  # the table's NOT NULL: no file can hold it
        return
    refused(hostile, "_solo_alarms", words)


def test_the_single_alarm_needs_a_handler():
    class NoHandler(DurableObject):
        @rpc
        def ping(self) -> None:
            pass

    single = _alarm_row(name="_alarm", method="alarm", kwargs="{}", every_ms=None)
    with pytest.raises(InvalidRow, match="no alarm"):
        image_rows.parse_alarm(single, NoHandler)


# -- the worker's own defence ---------------------------------------------------------------------


def test_a_worker_drops_outbox_entries_that_name_paths_or_reply_keys_and_sends_the_rest(tmp_path):
    # Given: an object's file whose outbox holds a good entry and bad ones (however they got there)
    name = uuid.uuid4().hex
    oid = object_id(NAMESPACE, "Importable", name)
    path = tmp_path / f"{name}.sqlite"
    first = ObjectInstance(Importable, object_id=oid, name=name, path=path, epoch=1, namespace=NAMESPACE)
    first.hydrate()
    first.close()
    good = to_tally(call_id="o" + "1" * 31)
    bad = [
        to_tally(call_id="o" + "2" * 31, object_id="/tmp/victim"),
        to_tally(call_id="o" + "3" * 31, reply_to="victim-key"),
        to_tally(call_id="o" + "4" * 31, object_id=object_id("elsewhere", "Tally", "t9")),
    ]
    conn = sqlite3.connect(path)
    for call in [bad[0], good, *bad[1:]]:
        conn.execute(*sent(call))
    conn.execute("INSERT INTO _solo_outbox (call_id, call, created_ms) VALUES ('o5', '{', 0)")
    conn.commit()
    conn.close()

    # When: a worker hydrates it
    again = ObjectInstance(Importable, object_id=oid, name=name, path=path, epoch=2, namespace=NAMESPACE)
    started = again.hydrate()

    # Then: only the good entry is sent; the bad ones are deleted with the next transaction
    assert started.sends == [good]
    again.ack_outbox([good.call_id])
    again.flush_outbox()
    assert again._conn.execute("SELECT count(*) FROM _solo_outbox").fetchone()[0] == 0  # noqa: SLF001
    again.close()


def test_ids_that_name_files_and_keys_are_only_those_solo_makes():
    assert is_object_id(object_id(NAMESPACE, "Tally", "x"))
    for bad in ("/tmp/x", "../../x", "A" * 32, "a" * 31, "a" * 33, "{x}", None, 3):
        assert not is_object_id(bad)
        with pytest.raises(ValueError):
            object_path(Path("/data"), bad)  # type: ignore[arg-type]
    assert all(is_call_id(c) for c in (new_call_id(), "k" + "0" * 31, SENT))
    assert not any(is_call_id(c) for c in ("x" + "0" * 31, "o" + "0" * 32, "o", "", "../x", None))


class _Recorder:
    def __init__(self) -> None:
        self.enqueued: list[Call] = []

    def enqueue(self, call: Call):
        self.enqueued.append(call)

        class Enqueued:
            decision = "owned"

        return Enqueued()


def test_the_transport_never_enqueues_a_sent_call_whose_ids_are_not_solo_s():
    mailbox, dispatched = _Recorder(), []
    transport = MailboxTransport(mailbox, dispatched.append, ReplyWaiter(None, "replies"))  # type: ignore[arg-type]
    for call in (to_tally(object_id="/tmp/victim"), to_tally(call_id="../x"), to_tally(reply_to="victim-key")):
        transport.send(call)
    assert mailbox.enqueued == [] and dispatched == []
    transport.send(to_tally())
    assert mailbox.enqueued == [to_tally()]


# -- the operator's actions ---------------------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    """A state store on a SQLite shared database of the test's own."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield StateStore(engine)
    engine.dispose()


def test_an_import_is_stored_only_once_checked_and_a_restore_of_a_state_with_a_trigger_is_refused(
    store, image, tmp_path
):
    admin = StateAdmin(store, NAMESPACE)
    name = uuid.uuid4().hex
    address = Address("Importable", name, object_id(NAMESPACE, "Importable", name))
    trigger = "CREATE TRIGGER t AFTER INSERT ON _solo_calls BEGIN DELETE FROM notes; END"

    # An import checks the file before anything is written.
    hostile, upload = tmp_path / "hostile", tmp_path / "upload"
    hostile.write_bytes(edited(image, trigger))
    upload.write_bytes(image)
    with pytest.raises(InvalidImage, match="trigger 't' on _solo_calls"):
        admin.import_file(address, hostile, registry())
    assert store.head(address.object_id) is None
    replaced = admin.import_file(address, upload, registry())
    assert sorted(name for name, _ in replaced.alarms) == ["_alarm", "nightly"]

    # A state that got a trigger on solo's tables some other way (an import before these
    # checks) cannot be restored.
    planted = store.replace(address.object_id, NAMESPACE, "Importable", address.name, edited(image, trigger))
    with pytest.raises(InvalidImage, match=f"state at sequence {planted} cannot be restored: trigger"):
        admin.restore(address, planted)
    assert admin.restore(address, replaced.seq).restored_from == replaced.seq


def test_refusals_quote_the_file_s_values_briefly(image):
    huge = "x" * 100_000
    message = refused(edited(image, sent(to_tally(class_name=huge))), "_solo_outbox")
    assert len(message) < 600
    message = refused(edited(image, f"CREATE TABLE _solo_{huge} (x)"), "table")
    assert len(message) < 600


def test_a_worker_drops_a_trigger_on_solo_s_tables_before_it_writes_to_them(tmp_path, image):
    # Given: a state that carries a trigger on _solo_calls (imported before imports were checked)
    name = uuid.uuid4().hex
    path = tmp_path / "planted.sqlite"
    trigger = "CREATE TRIGGER rewrite AFTER INSERT ON _solo_calls BEGIN UPDATE notes SET text = 'rewritten'; END"
    path.write_bytes(edited(image, trigger))

    # When: a worker hydrates it and runs a call
    instance = ObjectInstance(
        Importable,
        object_id=object_id(NAMESPACE, "Importable", name),
        name=name,
        path=path,
        epoch=9,
        namespace=NAMESPACE,
    )
    instance.hydrate()
    call = Call(new_call_id(), instance.object_id, "Importable", name, "note", {"text": "mine"})
    assert instance.run_batch([call]).outcomes[0].ok
    instance.close()

    # Then: the trigger is gone and never rewrote the user's rows
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall() == []
        assert sorted(r[0] for r in conn.execute("SELECT text FROM notes")) == ["hello", "mine"]
    finally:
        conn.close()
