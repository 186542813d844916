"""API keys: who may use the API, as which tenant, with which scope and rate (guarantee 9).

A key looks like GitHub's tokens: ``solo_<key id>_<secret>``. The prefix makes a leaked key
easy to recognise (in a log, a repository, a secret scanner), the id finds the key's row
without a scan, and the secret is 32 random bytes from ``secrets.token_urlsafe``. The shared
``api_keys`` table holds only the SHA-256 of the whole key: with 256 random bits there is
nothing to guess from a dictionary, so a slow password hash would only cost every request
time. Digests are compared with ``hmac.compare_digest``. The key itself exists once, in what
``KeyStore.create`` returns, and is never logged or stored.

Scopes are ordered, each allowing what the ones before it allow: ``call`` (call methods,
read call status), ``admin`` (also operate on objects: info, export, import, restore, delete,
purge, alarms), ``operator`` (everything, in any tenant it names). Which route needs which
scope is the API's table (api/auth.py). A key's tenant is recorded on it and on each
request's ``Principal``; the API addresses objects in that tenant (naming.object_id).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, cast, get_args

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from solo.objects import naming
from solo.objects.errors import InvalidKeySpec, InvalidName, KeyNotFound
from solo.objects.naming import DEFAULT_TENANT
from solo.objects.state.schema import api_keys_table, utcnow

Scope = Literal["call", "admin", "operator"]
SCOPES: tuple[Scope, ...] = get_args(Scope)  # in order: each allows what the ones before it allow

TOKEN_PREFIX = "solo"
KEY_ID_HEX_CHARS = 16
SECRET_BYTES = 32
_TOKEN = re.compile(rf"{TOKEN_PREFIX}_([0-9a-f]{{{KEY_ID_HEX_CHARS}}})_([A-Za-z0-9_-]{{43}})")
_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*")
_UNIT_NAMES = {
    "second": ("s", "sec", "secs"),
    "minute": ("m", "min", "mins"),
    "hour": ("h", "hr", "hrs"),
    "day": ("d",),
}
_UNITS = {name: unit for unit, short in _UNIT_NAMES.items() for name in (unit, f"{unit}s", *short)}
_UNIT_LETTERS = {"second": "s", "minute": "m", "hour": "h", "day": "d"}
LABEL_MAX_CHARS = 200


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: the key's id, its tenant and its scope."""

    key_id: str | None  # None when auth is off (SOLO_AUTH=off)
    tenant: str
    scope: Scope

    def allows(self, required: Scope) -> bool:
        return SCOPES.index(self.scope) >= SCOPES.index(required)


# SOLO_AUTH=off: every request acts as this principal.
DEV_PRINCIPAL = Principal(key_id=None, tenant=DEFAULT_TENANT, scope="operator")


@dataclass(frozen=True)
class Rate:
    """A key's rate limit: `amount` requests per `multiples` `unit`s (e.g. 100/s, 1000/5m)."""

    amount: int
    multiples: int
    unit: Literal["second", "minute", "hour", "day"]

    def __str__(self) -> str:
        per = "" if self.multiples == 1 else str(self.multiples)
        return f"{self.amount}/{per}{_UNIT_LETTERS[self.unit]}"


def parse_rate(text: str) -> Rate:
    """ "100/s", "100/second", "6/minute", "1000/5m", "10000/day" -> Rate; InvalidKeySpec otherwise."""
    match = _RATE.fullmatch(text.lower())
    unit = _UNITS.get(match.group(3)) if match else None
    if match is None or unit is None:
        raise InvalidKeySpec(f"rate {text!r} must look like 100/s (per s, m, h or d; e.g. 6/minute, 1000/5m)")
    amount, multiples = int(match.group(1)), int(match.group(2) or 1)
    if amount < 1 or multiples < 1:
        raise InvalidKeySpec(f"rate {text!r} must allow at least 1 request per at least 1 {unit}")
    return Rate(amount, multiples, cast(Literal["second", "minute", "hour", "day"], unit))


def check_tenant(tenant: str) -> str:
    try:
        return naming.check_tenant(tenant)
    except InvalidName as exc:
        raise InvalidKeySpec(exc.message) from None


def check_scope(scope: str) -> Scope:
    if scope not in SCOPES:
        raise InvalidKeySpec(f"scope {scope!r} must be one of {', '.join(SCOPES)}")
    return scope


def _check_label(label: str | None) -> str | None:
    if label is None:
        return None
    if len(label) > LABEL_MAX_CHARS or not label.isprintable():
        raise InvalidKeySpec(f"a label must be at most {LABEL_MAX_CHARS} printable characters")
    return label


def parse_token(token: str) -> tuple[str, str] | None:
    """A key's (id, secret), or None if `token` does not have a key's shape."""
    match = _TOKEN.fullmatch(token)
    return (match.group(1), match.group(2)) if match else None


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def digest_matches(token: str, digest: str) -> bool:
    """Whether `token` is the key whose SHA-256 is `digest`, in time independent of where they differ."""
    return hmac.compare_digest(token_digest(token), digest)


@dataclass(frozen=True)
class ApiKey:
    """A key as listed: everything but the key itself (which is never stored)."""

    id: str
    tenant: str
    scope: Scope
    rate: Rate | None
    label: str | None
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    @property
    def principal(self) -> Principal:
        return Principal(self.id, self.tenant, self.scope)


@dataclass(frozen=True)
class NewKey:
    """A key just created: its record, and the key itself, to be shown once."""

    key: ApiKey
    token: str = field(repr=False)


@dataclass(frozen=True)
class StoredKey:
    """What checking a request's key needs from its row."""

    token_sha256: str = field(repr=False)
    principal: Principal
    rate: Rate | None
    revoked: bool


class KeyStore:
    """The `api_keys` table of the shared database."""

    def __init__(self, engine: Engine, *, now: Callable[[], dt.datetime] = utcnow) -> None:
        self.engine = engine
        self.now = now

    def create(self, tenant: str, scope: str, *, rate: str | None = None, label: str | None = None) -> NewKey:
        """A new key for `tenant` with `scope`; the returned token is the only copy of the key."""
        parsed_rate = parse_rate(rate) if rate is not None else None
        key_id = secrets.token_hex(KEY_ID_HEX_CHARS // 2)
        token = f"{TOKEN_PREFIX}_{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"
        key = ApiKey(
            id=key_id,
            tenant=check_tenant(tenant),
            scope=check_scope(scope),
            rate=parsed_rate,
            label=_check_label(label),
            created_at=self.now(),
            revoked_at=None,
        )
        with self.engine.begin() as conn:
            conn.execute(
                api_keys_table.insert().values(
                    id=key.id,
                    tenant=key.tenant,
                    scope=key.scope,
                    rate=str(parsed_rate) if parsed_rate else None,
                    label=key.label,
                    token_sha256=token_digest(token),
                    created_at=key.created_at,
                )
            )
        return NewKey(key, token)

    def list(self) -> list[ApiKey]:
        """Every key, oldest first (revoked ones too)."""
        t = api_keys_table
        query = sa.select(t.c.id, t.c.tenant, t.c.scope, t.c.rate, t.c.label, t.c.created_at, t.c.revoked_at)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.c.created_at, t.c.id)).all()
        return [self._api_key(row._mapping) for row in rows]

    def get(self, key_id: str) -> ApiKey | None:
        t = api_keys_table
        query = sa.select(t.c.id, t.c.tenant, t.c.scope, t.c.rate, t.c.label, t.c.created_at, t.c.revoked_at)
        with self.engine.connect() as conn:
            row = conn.execute(query.where(t.c.id == key_id)).first()
        return self._api_key(row._mapping) if row is not None else None

    def revoke(self, key_id: str) -> ApiKey:
        """Mark the key revoked (once: revoking again keeps the first time); KeyNotFound if there is none."""
        t = api_keys_table
        with self.engine.begin() as conn:
            conn.execute(t.update().where(t.c.id == key_id, t.c.revoked_at.is_(None)).values(revoked_at=self.now()))
        key = self.get(key_id)
        if key is None:
            raise KeyNotFound(f"no API key {key_id!r}")
        return key

    def lookup(self, key_id: str) -> StoredKey | None:
        """One primary-key read: what checking a key with this id needs, or None if there is no such key."""
        t = api_keys_table
        query = sa.select(t.c.id, t.c.tenant, t.c.scope, t.c.rate, t.c.token_sha256, t.c.revoked_at)
        with self.engine.connect() as conn:
            row = conn.execute(query.where(t.c.id == key_id)).first()
        if row is None:
            return None
        return StoredKey(
            token_sha256=row.token_sha256,
            principal=Principal(row.id, row.tenant, check_scope(row.scope)),
            rate=parse_rate(row.rate) if row.rate else None,
            revoked=row.revoked_at is not None,
        )

    def verify(self, token: str) -> Principal | None:
        """The principal of a valid, unrevoked key; None for anything else. Uncached: the API caches."""
        parsed = parse_token(token)
        stored = self.lookup(parsed[0]) if parsed else None
        if stored is None or stored.revoked or not digest_matches(token, stored.token_sha256):
            return None
        return stored.principal

    def count_active(self) -> int:
        t = api_keys_table
        with self.engine.connect() as conn:
            query = sa.select(sa.func.count()).select_from(t).where(t.c.revoked_at.is_(None))
            return int(conn.execute(query).scalar_one())

    @staticmethod
    def _api_key(m: sa.RowMapping) -> ApiKey:
        return ApiKey(
            id=str(m["id"]),
            tenant=str(m["tenant"]),
            scope=check_scope(str(m["scope"])),
            rate=parse_rate(str(m["rate"])) if m["rate"] else None,
            label=cast("str | None", m["label"]),
            created_at=_aware(cast(dt.datetime, m["created_at"])),
            revoked_at=_aware(cast(dt.datetime, m["revoked_at"])) if m["revoked_at"] is not None else None,
        )


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite gives back naive datetimes; they were written in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
