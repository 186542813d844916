"""A call's result is at most SOLO_MAX_RESULT_BYTES of JSON; past it the call fails and changes nothing.

The limit is checked where the outcome is made, inside the call's savepoint, so a
result too large to deliver fails the call exactly as an exception would: its SQL,
storage and sends are rolled back, and the failure is what its record keeps.
"""

from __future__ import annotations

import json
import uuid

import pytest

from solo import DurableObject, rpc
from solo.objects.calls import DEFAULT_MAX_RESULT_BYTES, MAX_RECORDED_RESULT_BYTES, Call, Outcome, dumps
from solo.objects.errors import InvalidSettings
from solo.objects.naming import new_call_id, object_id
from solo.objects.runtime.instance import ObjectInstance
from solo.objects.settings import Settings
from tests.objects import Tally  # noqa: F401  (registers the target of the sends)

LIMIT = 1000


class Reporter(DurableObject):
    """Writes to its table and storage, sends a call, then returns `text`."""

    migrations = ["CREATE TABLE reports (text TEXT NOT NULL)"]

    @rpc
    def report(self, text: str, tag: str = "") -> str:
        self.sql.execute("INSERT INTO reports VALUES (?)", (tag,))
        self.storage.put(f"report:{tag}", len(text))
        self.objects.get("Tally", "t").send.add(tag=tag)
        return text

    @rpc
    def echo(self, value: dict) -> dict:
        return value

    @rpc
    def tags(self) -> list[str]:
        return [r[0] for r in self.sql.execute("SELECT text FROM reports ORDER BY rowid")]

    @rpc
    def stored(self) -> list[str]:
        return list(self.storage.list(prefix="report:"))


@pytest.fixture
def reporter(tmp_path):
    made: list[ObjectInstance] = []

    def open_(max_result_bytes: int = LIMIT) -> ObjectInstance:
        name = uuid.uuid4().hex
        instance = ObjectInstance(
            Reporter,
            object_id=object_id("test", "Reporter", name),
            name=name,
            path=tmp_path / f"{name}.sqlite",
            epoch=1,
            max_result_bytes=max_result_bytes,
        )
        instance.hydrate()
        made.append(instance)
        return instance

    yield open_
    for instance in made:
        instance.close()


def call(instance: ObjectInstance, method: str, call_id: str | None = None, **args) -> Call:
    return Call(call_id or new_call_id(), instance.object_id, "Reporter", instance.name, method, args)


def run(instance: ObjectInstance, method: str, **args) -> Outcome:
    (outcome,) = instance.run_batch([call(instance, method, **args)]).outcomes
    return outcome


def json_size(value) -> int:
    """The result as the caller gets it: compact UTF-8 JSON."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def test_a_result_past_the_limit_fails_with_its_size_and_the_limit_and_changes_nothing(reporter):
    instance = reporter()

    # Given a batch: a call whose result is past the limit between two that are within it
    text = "x" * 2000
    batch = [
        call(instance, "report", text="before", tag="a"),
        call(instance, "report", text=text, tag="b"),
        call(instance, "report", text="after", tag="c"),
    ]

    # When it runs
    result = instance.run_batch(batch)

    # Then the large one failed, saying how large and what the limit is ...
    before, large, after = result.outcomes
    assert before.ok and after.ok
    assert not large.ok
    assert large.error["code"] == "result_too_large"
    assert large.error["type"] == "ResultTooLarge"
    message = large.error["message"]
    assert f"{json_size(text)} bytes of JSON" in message
    assert f"the limit of {LIMIT} bytes (SOLO_MAX_RESULT_BYTES)" in message
    assert f"Reporter/{instance.name}.report" in message

    # ... and changed nothing, as if it had raised: no row, no storage entry, no send
    assert run(instance, "tags").result == ["a", "c"]
    assert run(instance, "stored").result == ["report:a", "report:c"]
    assert [s.args["tag"] for s in result.sends] == ["a", "c"]

    # Its record keeps the failure: the same call id is answered from it, not run again
    (again,) = instance.run_batch([batch[1]]).outcomes
    assert again == large
    assert run(instance, "tags").result == ["a", "c"]


def test_a_result_of_exactly_the_limit_is_delivered(reporter):
    instance = reporter()
    text = "y" * (LIMIT - 2)  # and its two quotes
    assert json_size(text) == LIMIT
    assert run(instance, "report", text=text).result == text
    assert run(instance, "report", text=text + "y").error["code"] == "result_too_large"


def test_the_size_is_of_compact_utf8_json_as_the_caller_gets_it(reporter):
    # Non-ASCII characters count as their UTF-8 bytes, not as the escapes of ASCII JSON
    value = {"name": "é" * 300, "list": [1, 2, 3]}
    size = json_size(value)
    assert size < len(json.dumps(value))  # escaped, it would be longer
    assert run(reporter(max_result_bytes=size), "echo", value=value).result == value
    assert run(reporter(max_result_bytes=size - 1), "echo", value=value).error["code"] == "result_too_large"


def test_a_result_its_record_cannot_hold_fails_the_same_way_whatever_the_limit(reporter):
    # Within the largest limit as UTF-8, but three times as long with its characters escaped
    text = "\U0001f600" * (MAX_RECORDED_RESULT_BYTES // 12 + 1)
    assert json_size(text) <= MAX_RECORDED_RESULT_BYTES < len(json.dumps(text))
    instance = reporter(max_result_bytes=MAX_RECORDED_RESULT_BYTES)
    outcome = run(instance, "report", text=text, tag="emoji")
    assert outcome.error["code"] == "result_too_large"
    assert "non-ASCII characters escaped" in outcome.error["message"]
    assert run(instance, "tags").result == []


def test_solo_max_result_bytes_is_read_and_bounded_by_what_a_record_holds():
    assert Settings().max_result_bytes == DEFAULT_MAX_RESULT_BYTES == 16 * 1024 * 1024
    assert Settings.from_env({"SOLO_MAX_RESULT_BYTES": "4096"}).max_result_bytes == 4096
    assert Settings.from_env({"SOLO_MAX_RESULT_BYTES": str(MAX_RECORDED_RESULT_BYTES)}).max_result_bytes
    for bad in ("0", "-1", str(MAX_RECORDED_RESULT_BYTES + 1)):
        with pytest.raises(InvalidSettings, match="SOLO_MAX_RESULT_BYTES"):
            Settings.from_env({"SOLO_MAX_RESULT_BYTES": bad})


def test_an_outcome_made_from_its_encoded_result_has_the_payload_it_would_make_itself():
    for result in [1, "x", {"a": [1, 2.5, None, True]}, '\x00\n"\\', [], {"k": "v" * 100}, 1e300]:
        encoded = dumps(result)
        made = Outcome.success("c1", result, result_json=encoded)
        assert made.payload() == Outcome.success("c1", result).payload()
        assert made == Outcome.success("c1", result)
        assert Outcome.from_payload(made.payload()) == made
