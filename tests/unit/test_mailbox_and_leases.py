"""Mailbox entries and lease values, as encoded and decoded in Python: no Redis involved.

The Lua scripts that move them, on both backends, are in tests/contract/test_mailbox_and_leases.py.
"""

from solo.objects.coordination.leases import lease_value, new_generation, owner_of
from solo.objects.coordination.mailbox import decode_entry, encode_entry
from tests.contract.test_mailbox_and_leases import make_call, new_object


def test_a_mailbox_entry_round_trips_a_call_and_starts_with_its_id():
    call = make_call(new_object(), by=2, reply_to="r")
    entry = encode_entry(call)
    assert entry.startswith(call.call_id + " ")
    assert decode_entry(entry) == call
    assert decode_entry(entry.encode()) == call


def test_lease_values_name_their_owner_and_its_generation_and_are_unique():
    generation = new_generation()
    a, b = lease_value("host-1", generation), lease_value("host-1", generation)
    assert a != b
    assert a.split("|")[1] == generation  # lease_alive.lua compares it with the owner's heartbeat
    assert new_generation() != generation
    assert owner_of(a) == owner_of(b.encode()) == "host-1"
    assert owner_of(None) is None
