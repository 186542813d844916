"""Calls between objects, seen from one instance alone: the outbox, derived ids, chains. No services.

Through the host, the API and the mailbox on both backends: tests/contract/test_remote_calls.py.
"""

from __future__ import annotations

import pytest

from solo import DurableObject, rpc
from solo.objects.calls import BatchResult, Call, Outcome
from solo.objects.errors import (
    CycleError,
    InvalidArguments,
    InvalidName,
    RemoteCallError,
    RemoteCallUnavailable,
    SoloError,
    UnknownClass,
    UnknownMethod,
)
from solo.objects.naming import new_call_id, object_id
from solo.objects.remote import derived_call_id
from solo.objects.runtime.instance import ObjectInstance, recorded_outcomes
from tests.objects import Relay, Tally


class Sender(DurableObject):
    migrations = ["CREATE TABLE done (n INTEGER)"]

    def on_start(self) -> None:
        if self.name.startswith("greets"):
            self.objects.get("Tally", "greeted").send.add(tag=self.name)

    @rpc
    def fan_out(self, count: int, fail: bool = False) -> int:
        for i in range(count):
            self.objects.get("Tally", f"t{i}").send("add", tag=str(i))
        self.sql.execute("INSERT INTO done VALUES (?)", (count,))
        if fail:
            raise RuntimeError("after sending")
        return count

    @rpc
    def wait_on(self, target: str) -> int:
        return self.objects.get("Tally", target).total()

    @rpc
    def wait_and_swallow(self, target: str) -> str:
        self.sql.execute("INSERT INTO done VALUES (-1)")
        try:
            return str(self.objects.get("Tally", target).total())
        except RemoteCallError as exc:
            return exc.code

    @rpc
    def bad_target(self, kind: str) -> None:
        if kind == "class":
            self.objects.get("NoSuchClass", "x")
        elif kind == "name":
            self.objects.get("Tally", "a/b")
        elif kind == "method":
            self.objects.get("Tally", "x").send.no_such_method()
        else:
            self.objects.get("Tally", "x").send("add", tag=object())


def _hydrated(tmp_path, name: str, epoch: int = 1, transport=None) -> tuple[ObjectInstance, BatchResult]:
    instance = ObjectInstance(
        Sender,
        object_id=object_id("test", "Sender", name),
        name=name,
        path=tmp_path / f"{name}.sqlite",
        epoch=epoch,
        namespace="test",
        transport=transport,
    )
    return instance, instance.hydrate()


def _instance(tmp_path, name: str, epoch: int = 1, transport=None) -> ObjectInstance:
    return _hydrated(tmp_path, name, epoch, transport)[0]


def _call(instance: ObjectInstance, method: str, call_id: str | None = None, chain=(), **args) -> Call:
    return Call(call_id or new_call_id(), instance.object_id, "Sender", instance.name, method, args, chain=list(chain))


def test_sends_are_written_to_the_outbox_with_ids_derived_from_the_call_and_only_if_it_succeeds(tmp_path):
    instance = _instance(tmp_path, "s1")
    ok, failing = _call(instance, "fan_out", count=2), _call(instance, "fan_out", count=3, fail=True)
    batch = instance.run_batch([ok, failing])
    assert [o.ok for o in batch.outcomes] == [True, False]

    sent = batch.sends
    assert [c.call_id for c in sent] == [derived_call_id(ok.call_id, 0), derived_call_id(ok.call_id, 1)]
    assert [(c.class_name, c.object_name, c.method, c.args) for c in sent] == [
        ("Tally", "t0", "add", {"tag": "0"}),
        ("Tally", "t1", "add", {"tag": "1"}),
    ]
    assert sent[0].object_id == object_id("test", "Tally", "t0")
    assert all(c.chain == [] and c.reply_to is None for c in sent)  # nobody waits on a sent call
    assert instance.pending_outbox() == sent  # committed with the batch
    assert instance.run_batch([_call(instance, "fan_out", count=0)]).sends == []  # each released once

    # Acknowledged entries are deleted by the next transaction
    instance.ack_outbox([c.call_id for c in sent])
    instance.flush_outbox()
    assert instance.pending_outbox() == []
    instance.close()


def test_entries_left_by_a_crash_after_commit_are_sent_again_at_hydrate(tmp_path):
    first = _instance(tmp_path, "s2")
    expected = first.run_batch([_call(first, "fan_out", count=2)]).sends
    first.close()  # died before sending: the entries are still in the file

    again, started = _hydrated(tmp_path, "s2", epoch=2)
    assert started.sends == expected
    again.close()


def test_on_start_may_send_and_its_sends_commit_with_it(tmp_path):
    instance, started = _hydrated(tmp_path, "greets-1")
    (sent,) = started.sends
    assert (sent.class_name, sent.object_name, sent.args) == ("Tally", "greeted", {"tag": "greets-1"})
    instance.close()


def test_an_incoming_call_whose_chain_holds_the_object_is_refused_without_running(tmp_path):
    instance = _instance(tmp_path, "s3")
    looping = _call(instance, "fan_out", chain=["Relay/x", "Sender/s3", "Relay/y"], count=1)
    batch = instance.run_batch([looping])
    (outcome,) = batch.outcomes
    assert outcome.error["code"] == "call_cycle"
    assert "Sender/s3 -> Relay/y -> Sender/s3" in outcome.error["message"]
    assert batch.sends == []
    instance.close()


def test_targets_are_checked_locally_and_waiting_needs_a_host(tmp_path):
    instance = _instance(tmp_path, "s4")
    codes = [
        instance.run_batch([_call(instance, "bad_target", kind=k)]).outcomes[0].error["code"]
        for k in ("class", "name", "method", "args")
    ]
    assert codes == [UnknownClass.code, InvalidName.code, UnknownMethod.code, InvalidArguments.code]
    outcome = instance.run_batch([_call(instance, "wait_on", target="x")]).outcomes[0]
    assert outcome.error["code"] == "unavailable" and "running host" in outcome.error["message"]
    assert instance.pending_outbox() == []
    instance.close()


class _Transport:
    reply_to = "replies:test"

    def __init__(self, error: Exception | None = None) -> None:
        self.error, self.calls = error, []

    def call(self, call: Call, timeout_s: float) -> Outcome:
        self.calls.append(call)
        if self.error is not None:
            raise self.error
        return Outcome.success(call.call_id, 7)


def test_a_waiting_call_carries_the_chain_and_a_derived_id(tmp_path):
    transport = _Transport()
    instance = _instance(tmp_path, "s6", transport=transport)
    caller = _call(instance, "wait_and_swallow", chain=["Relay/x"], target="t")
    assert instance.run_batch([caller]).outcomes[0].result == "7"
    (sent,) = transport.calls
    assert sent.chain == ["Relay/x", "Sender/s6"]
    assert sent.call_id == derived_call_id(caller.call_id, 0)
    assert sent.reply_to == "replies:test"
    instance.close()


def test_an_undeliverable_call_fails_the_batch_uncommitted_even_if_user_code_catches_it(tmp_path):
    transport = _Transport(RemoteCallUnavailable("Tally/t.total: could not enqueue"))
    instance = _instance(tmp_path, "s7", transport=transport)
    caller = _call(instance, "wait_and_swallow", target="t")
    with pytest.raises(RemoteCallUnavailable):
        instance.run_batch([caller])
    assert caller.call_id not in recorded_outcomes(instance.path)  # it runs again later, under the same ids
    transport.error = None
    assert instance.run_batch([caller]).outcomes[0].result == "7"
    assert [c.call_id for c in transport.calls] == [derived_call_id(caller.call_id, 0)] * 2
    instance.close()


def test_self_objects_outside_a_call_is_refused(tmp_path):
    instance = _instance(tmp_path, "s5")
    with pytest.raises(SoloError, match="only while a call"):
        instance._user.objects.get("Tally", "x").send.add(tag="late")
    instance.close()


def test_errors_are_exported_with_their_codes():
    assert CycleError.code == "call_cycle" and issubclass(CycleError, RemoteCallError)
    assert Relay.__solo_methods__ and Tally.__solo_methods__
