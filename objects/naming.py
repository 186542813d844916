"""Object addresses: name validation and deterministic object ids.

An object id is a hash of (namespace, tenant, class, name). It is safe to use in
Redis keys and file paths; the user's name never is. Tenant ``default``'s ids
hash (namespace, class, name) only, as every id did before tenants existed, so
the objects of a deployment that predates them belong to tenant ``default``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import uuid
from dataclasses import dataclass

from solo.objects.errors import InvalidName

MAX_NAME_CHARS = 256
DEFAULT_TENANT = "default"
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_CLASS_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# Printable text without '/', control characters or surrounding whitespace.
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f/]")
# What object_id() and the call id makers below (and objects/remote.py's derived ids) produce.
_OBJECT_ID = re.compile(r"[0-9a-f]{32}")
_CALL_ID = re.compile(r"[0-9a-f]{32}|[ko][0-9a-f]{31}")


def check_class_name(class_name: str) -> str:
    if not isinstance(class_name, str) or not _CLASS_NAME.match(class_name):
        raise InvalidName(f"class name {class_name!r} must be a Python identifier of at most 128 characters")
    return class_name


def check_object_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidName("object name must be a non-empty string")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidName(f"object name is longer than {MAX_NAME_CHARS} characters")
    if _FORBIDDEN.search(name):
        raise InvalidName("object name must not contain '/' or control characters")
    if name != name.strip():
        raise InvalidName("object name must not start or end with whitespace")
    return name


def is_tenant(value: object) -> bool:
    return isinstance(value, str) and _TENANT.fullmatch(value) is not None


def check_tenant(tenant: str) -> str:
    if not is_tenant(tenant):
        raise InvalidName(
            f"tenant {str(tenant)[:80]!r} must be 1 to 64 letters, digits and '_.-', starting with a letter or digit"
        )
    return tenant


def object_id(namespace: str, class_name: str, name: str, tenant: str = DEFAULT_TENANT) -> str:
    # Names and tenants hold no NUL, so the two forms below never hash the same text.
    if tenant == DEFAULT_TENANT:
        identity = f"{namespace}\x00{class_name}\x00{name}"
    else:
        identity = f"{namespace}\x00tenant\x00{tenant}\x00{class_name}\x00{name}"
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


def is_object_id(value: object) -> bool:
    """An id as object_id() makes them (32 lowercase hex): safe in a path or a Redis key."""
    return isinstance(value, str) and _OBJECT_ID.fullmatch(value) is not None


def is_call_id(value: object) -> bool:
    """A call id as solo makes them: random, from an Idempotency-Key ("k..."), or derived ("o...")."""
    return isinstance(value, str) and _CALL_ID.fullmatch(value) is not None


def unique_name() -> str:
    """A fresh random name, for objects that need no natural key (new_unique_id)."""
    return uuid.uuid4().hex


def new_call_id() -> str:
    """A random version-4 UUID's 32 hex digits, as uuid.uuid4().hex, without the UUID object (a third the CPU)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    return raw.hex()


def is_keyed_call_id(call_id: str) -> bool:
    """Made by idempotent_call_id from an Idempotency-Key (random ids are hex, derived ones start with "o")."""
    return call_id.startswith("k")


def idempotent_call_id(secret: bytes, object_id_: str, idempotency_key: str) -> str:
    """Call id for an Idempotency-Key: the same key on the same object is the same call.

    Keyed with the deployment's secret (state/installation.py): knowing an object's address
    and a key another tenant used is not enough to compute that call's id.
    """
    digest = hmac.new(secret, f"{object_id_}\x00{idempotency_key}".encode(), hashlib.sha256).hexdigest()
    return "k" + digest[:31]


@dataclass(frozen=True)
class Address:
    """An object as a caller names it, with the id derived from its namespace, tenant, class and name."""

    class_name: str
    name: str
    object_id: str
    tenant: str = DEFAULT_TENANT

    @property
    def ref(self) -> str:
        return f"{self.class_name}/{self.name}"
