"""A Call's mailbox entry: every field but `crashes`, in order; a traceless call without `trace`."""

from __future__ import annotations

import dataclasses
import json

import pytest

from solo.objects.calls import Call


def a_call(**changes: object) -> Call:
    call = Call(
        call_id="c1",
        object_id="o1",
        class_name="Room",
        object_name="lobby",
        method="post",
        args={"text": "hi", "tags": ["a", {"b": 1}]},
        reply_to="replies:api-1",
        enqueued_ms=1234,
        chain=["Relay/a"],
        tenant="acme",
        crashes=2,
        trace="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )
    return dataclasses.replace(call, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("trace", ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", ""])
def test_an_entry_holds_every_field_but_the_crash_count_in_order(trace):
    call = a_call(trace=trace)
    entry = json.loads(call.to_json())
    expected = [f.name for f in dataclasses.fields(Call) if f.name != "crashes" and (f.name != "trace" or trace)]
    assert list(entry) == expected
    assert entry == {name: getattr(call, name) for name in expected}
    # read back, it is the same call but for the crash count, which a claim sets from the call's record
    assert Call.from_json(call.to_json()) == call and Call.from_json(call.to_json()).crashes == 0
