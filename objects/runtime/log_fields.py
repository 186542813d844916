"""The fields of the object and call running on this thread, for every log line written meanwhile.

The runtime binds them (``bound``) around a batch and around each call: the object as
``Class/name``, its tenant and epoch, the call's id and the method running. Whatever
logs meanwhile, solo or the user's code, gets them through ``FieldsFilter`` on the
process's log handler (cli/logs.py), as JSON keys or as a ``[key=value ...]`` suffix.
A context variable, not thread-local state: each pool thread and each asyncio task sees
only its own.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType

FIELDS_ATTRIBUTE = "solo_fields"  # on a LogRecord: the fields bound when it was made, and any it brought

_bound: ContextVar[Mapping[str, object]] = ContextVar("solo_log_fields", default=MappingProxyType({}))


class _Bound:
    """The context manager `bound` returns: a class, as it runs for every call (a generator costs more)."""

    __slots__ = ("_fields", "_token")

    def __init__(self, fields: Mapping[str, object]) -> None:
        self._fields = fields
        self._token: Token[Mapping[str, object]] | None = None

    def __enter__(self) -> None:
        self._token = _bound.set({**_bound.get(), **self._fields})

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _bound.reset(self._token)


def bound(**fields: object) -> contextlib.AbstractContextManager[None]:
    """Add `fields` to every log line written inside the block."""
    return _Bound(fields)


def current() -> Mapping[str, object]:
    return _bound.get()


class FieldsFilter(logging.Filter):
    """On a handler: records what was bound when each record was made, with the record's own
    ``extra={"solo_fields": {...}}`` (the API's access log) taking precedence."""

    def filter(self, record: logging.LogRecord) -> bool:
        own = getattr(record, FIELDS_ATTRIBUTE, None)
        bound_now = _bound.get()
        if own or bound_now:
            setattr(record, FIELDS_ATTRIBUTE, {**bound_now, **(own or {})})
        return True


def fields_of(record: logging.LogRecord) -> Mapping[str, object]:
    found = getattr(record, FIELDS_ATTRIBUTE, None)
    return found if isinstance(found, Mapping) else {}
