"""solo's own tables in every object's database (``_solo_*``), created at each hydrate.

User SQL may not touch them (objects/sql.py); an imported file's copies are
checked against exactly these statements (objects/state/images.py).
"""

from __future__ import annotations

from solo.objects.alarms import ALARM_TRACES_DDL, ALARMS_DDL
from solo.objects.storage import KV_TABLE_DDL
from solo.objects.websockets import SOCKETS_DDL

SOLO_TABLES_DDL = (
    "CREATE TABLE IF NOT EXISTS _solo_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
    # Exactly-once: a call id found here is answered from its recorded outcome and never run again.
    "CREATE TABLE IF NOT EXISTS _solo_calls (call_id TEXT PRIMARY KEY, payload TEXT NOT NULL,"
    " finished_ms INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS _solo_calls_by_time ON _solo_calls (finished_ms)",
    KV_TABLE_DDL,
    # Calls sent with stub.send(): written in the sending call's savepoint, enqueued by the host
    # after the batch is committed and shipped, deleted in a later transaction.
    "CREATE TABLE IF NOT EXISTS _solo_outbox (seq INTEGER PRIMARY KEY, call_id TEXT NOT NULL UNIQUE,"
    " call TEXT NOT NULL, created_ms INTEGER NOT NULL)",
    ALARMS_DDL,
    # WebSockets (objects/websockets.py): the open sockets, their tags, messages for gateways, settings.
    *SOCKETS_DDL,
)

# Made when first needed, not at each hydrate (an imported file may hold them too).
OPTIONAL_TABLES_DDL = (ALARM_TRACES_DDL,)
