"""Names and ids (objects/naming.py)."""

import uuid

from solo.objects.naming import is_call_id, new_call_id


def test_a_new_call_id_is_a_version_4_uuid_s_hex():
    ids = {new_call_id() for _ in range(1000)}
    assert len(ids) == 1000
    for call_id in ids:
        assert is_call_id(call_id) and uuid.UUID(hex=call_id).version == 4 and uuid.UUID(hex=call_id).hex == call_id
