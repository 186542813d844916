"""``self.storage``: key-value storage in the object's own database and transaction."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from solo.objects.alarms import Alarms

KV_TABLE_DDL = "CREATE TABLE IF NOT EXISTS _solo_kv (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID"

_MISSING = object()


def _encode(key: str, value: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"storage keys are strings, not {type(key).__name__}")
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"value for {key!r} is not JSON-serialisable: {exc}") from None


class Storage:
    def __init__(self, connection: sqlite3.Connection, alarms: Alarms | None = None) -> None:
        self._db = connection
        self._alarms = alarms

    # -- the object's alarm (Cloudflare's storage.setAlarm / getAlarm / deleteAlarm) --

    def set_alarm(self, when: dt.datetime | int | float) -> None:
        """Call ``alarm(info)`` at `when` (a datetime, naive meaning UTC, or epoch ms); replaces any alarm."""
        self._alarm_book().set_alarm(when)

    def get_alarm(self) -> int | None:
        """The alarm's time in epoch ms, or None."""
        return self._alarm_book().get_alarm()

    def delete_alarm(self) -> None:
        self._alarm_book().delete_alarm()

    def _alarm_book(self) -> Alarms:
        if self._alarms is None:
            raise RuntimeError("alarms are not available on this storage handle")
        return self._alarms

    def get(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM _solo_kv WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        keys = list(keys)
        found: dict[str, Any] = {}
        for start in range(0, len(keys), 500):  # stay under SQLite's variable limit
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, value in self._db.execute(f"SELECT key, value FROM _solo_kv WHERE key IN ({marks})", chunk):
                found[key] = json.loads(value)
        return {k: found[k] for k in keys if k in found}

    def put(self, key: str, value: Any) -> None:
        self._db.execute("INSERT OR REPLACE INTO _solo_kv (key, value) VALUES (?, ?)", (key, _encode(key, value)))

    def put_many(self, entries: Mapping[str, Any]) -> None:
        rows = [(k, _encode(k, v)) for k, v in entries.items()]
        self._db.executemany("INSERT OR REPLACE INTO _solo_kv (key, value) VALUES (?, ?)", rows)

    def delete(self, key: str) -> bool:
        return self._db.execute("DELETE FROM _solo_kv WHERE key = ?", (key,)).rowcount > 0

    def delete_all(self) -> None:
        self._db.execute("DELETE FROM _solo_kv")

    def list(
        self,
        prefix: str | None = None,
        start: str | None = None,
        end: str | None = None,
        limit: int | None = None,
        reverse: bool = False,
    ) -> dict[str, Any]:
        """Entries in key order; ``start`` is inclusive, ``end`` exclusive, like Cloudflare's."""
        where, params = [], []
        if prefix:
            where.append("substr(key, 1, ?) = ?")
            params += [len(prefix), prefix]
        if start is not None:
            where.append("key >= ?")
            params.append(start)
        if end is not None:
            where.append("key < ?")
            params.append(end)
        sql = "SELECT key, value FROM _solo_kv"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY key DESC" if reverse else " ORDER BY key"
        if limit is not None:
            if limit < 0:
                raise ValueError("limit must not be negative")
            sql += " LIMIT ?"
            params.append(limit)
        return {key: json.loads(value) for key, value in self._db.execute(sql, params)}
