"""The asyncio client packs plain commands with hiredis (objects/coordination/redis_clients.py):
the very bytes redis-py's packer makes, and redis-py's packer for anything else."""

import pytest
from redis.asyncio.connection import Connection

from solo.objects.coordination import redis_clients


@pytest.mark.parametrize(
    "args",
    [
        ("EVALSHA", "f" * 40, 2, "solo:{a}:mailbox", "k2", 'c1 {"args":{"by":1}}', 3600, 0, -7, 2**63),
        ("SET", b"k\x00\xff", "v\u00e9\u4e2d", 10**30),
        ("BLMPOP", 1, 1, "solo:replies:x", "LEFT", "COUNT", 256),
        ("GET", ""),
    ],
)
def test_plain_commands_pack_to_the_bytes_redis_py_makes(args):
    packed = redis_clients._packed(args)
    if redis_clients._hiredis_pack is None:
        assert packed is None
    else:
        assert packed == b"".join(Connection().pack_command(*args))


@pytest.mark.parametrize("args", [("SET", "k", 1.5), ("SET", "k", True), ("CONFIG GET", "maxmemory"), (b"GET", "k")])
def test_other_commands_are_left_to_redis_py(args):
    assert redis_clients._packed(args) is None
