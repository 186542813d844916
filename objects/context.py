"""The one object a handler's code needs: identity, SQL, storage, the shared database, other objects,
alarms and a clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from solo.objects.sql import SqlHandle
from solo.objects.storage import Storage

if TYPE_CHECKING:
    from solo.objects.alarms import Alarms
    from solo.objects.remote import ObjectDirectory
    from solo.objects.shared import NoSharedDatabase, SharedDatabase
    from solo.objects.websockets import WebSockets


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class ObjectContext:
    object_id: str
    class_name: str
    name: str
    sql: SqlHandle
    storage: Storage
    clock_ms: Callable[[], int] = field(default=wall_clock_ms)
    objects: ObjectDirectory | None = None
    alarms: Alarms | None = None
    shared: SharedDatabase | NoSharedDatabase | None = None
    websockets: WebSockets | None = None

    def now_ms(self) -> int:
        return self.clock_ms()
