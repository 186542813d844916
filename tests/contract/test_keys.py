"""The key store (objects/state/keys.py) on both shared databases: SQLite and PostgreSQL.

Keys are GitHub-style tokens, stored only as a hash; verification refuses anything but
the exact, unrevoked key. The Postgres database is shared by the test session, so each
test looks only at the keys it made.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from solo.objects.errors import InvalidKeySpec, KeyNotFound
from solo.objects.state.keys import KeyStore, Principal, Rate, parse_token, token_digest
from solo.objects.state.schema import api_keys_table

TOKEN_SHAPE = re.compile(r"solo_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")


@pytest.fixture
def keys(engine) -> KeyStore:
    return KeyStore(engine)


def dump(engine, key_id: str) -> str:
    """Every column of the key's row, as text: what someone with a copy of the table would see."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(api_keys_table).where(api_keys_table.c.id == key_id)).all()
    assert len(rows) == 1
    return repr([tuple(row) for row in rows])


def test_a_new_key_is_a_prefixed_token_with_its_id_and_verifies_as_its_principal(keys):
    new = keys.create("acme", "call", rate="100/s", label="billing service")

    assert TOKEN_SHAPE.fullmatch(new.token), new.token
    key_id, secret = parse_token(new.token)
    assert key_id == new.key.id
    assert len(secret) == 43  # secrets.token_urlsafe(32): 256 random bits
    assert (new.key.tenant, new.key.scope, new.key.rate, new.key.label) == (
        "acme",
        "call",
        Rate(100, 1, "second"),
        "billing service",
    )
    assert keys.verify(new.token) == Principal(new.key.id, "acme", "call")
    assert new.token not in repr(new)  # a NewKey printed by accident does not show the key


def test_the_table_holds_only_a_hash_of_the_key(keys, engine):
    new = keys.create("acme", "admin")
    _, secret = parse_token(new.token)

    row = dump(engine, new.key.id)

    assert secret not in row and new.token not in row
    assert token_digest(new.token) in row  # a SHA-256 of the whole key, and nothing else of it


def test_anything_but_the_exact_unrevoked_key_is_refused(keys):
    new = keys.create("acme", "operator")
    key_id, secret = parse_token(new.token)
    other = keys.create("acme", "operator")
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")

    for token in (
        f"solo_{key_id}_{flipped}",  # right id, wrong secret
        f"solo_{key_id}_{parse_token(other.token)[1]}",  # another key's secret
        f"solo_{'0' * 16}_{secret}",  # unknown id
        f"solo_{key_id}_{secret}x",  # malformed: too long
        new.token.upper(),
        "",
        "Bearer " + new.token,
    ):
        assert keys.verify(token) is None, token
    assert keys.verify(new.token) is not None

    keys.revoke(key_id)
    assert keys.verify(new.token) is None


def test_revoking_keeps_the_first_time_and_an_unknown_id_is_named(keys):
    new = keys.create("acme", "call")
    first = keys.revoke(new.key.id).revoked_at
    assert first is not None
    assert keys.revoke(new.key.id).revoked_at == first
    assert keys.lookup(new.key.id).revoked
    with pytest.raises(KeyNotFound, match="nosuchkey"):
        keys.revoke("nosuchkey")


def test_listing_shows_every_field_but_the_key(keys):
    a = keys.create("acme", "call", rate="6/minute", label="billing service")
    b = keys.create("globex", "admin")
    keys.revoke(b.key.id)

    listed = {k.id: k for k in keys.list() if k.id in (a.key.id, b.key.id)}

    assert listed[a.key.id].rate == Rate(6, 1, "minute") and str(listed[a.key.id].rate) == "6/m"
    assert listed[a.key.id].label == "billing service" and listed[a.key.id].revoked_at is None
    assert listed[b.key.id].tenant == "globex" and listed[b.key.id].revoked_at is not None
    assert listed[a.key.id].created_at.tzinfo is not None
    assert parse_token(a.token)[1] not in repr(listed)


@pytest.mark.parametrize(
    "tenant, scope, rate, label, problem",
    [
        ("", "call", None, None, "tenant"),
        ("acme corp", "call", None, None, "tenant"),
        ("-acme", "call", None, None, "tenant"),
        ("a" * 65, "call", None, None, "tenant"),
        ("acme", "root", None, None, "scope"),
        ("acme", "call", "100", None, "rate"),
        ("acme", "call", "0/s", None, "rate"),
        ("acme", "call", "100/ms", None, "rate"),
        ("acme", "call", "100/0s", None, "rate"),
        ("acme", "call", None, "line\nbreak", "label"),
        ("acme", "call", None, "x" * 201, "label"),
    ],
)
def test_a_key_that_cannot_be_made_as_asked_is_refused_and_nothing_is_written(
    keys, tenant, scope, rate, label, problem
):
    before = len(keys.list())
    with pytest.raises(InvalidKeySpec, match=problem):
        keys.create(tenant, scope, rate=rate, label=label)
    assert len(keys.list()) == before


def test_count_active_leaves_out_revoked_keys(keys):
    before = keys.count_active()
    new = keys.create("acme", "call")
    assert keys.count_active() == before + 1
    keys.revoke(new.key.id)
    assert keys.count_active() == before
