"""The deployment's own secret, shared by its API processes through the shared database.

Migration 0005 makes it once. It keys the call ids derived from Idempotency-Keys
(naming.idempotent_call_id), so that nobody outside the deployment can compute them.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from solo.objects.state.schema import installation_table


def installation_secret(engine: Engine) -> bytes:
    with engine.connect() as conn:
        secret = conn.execute(sa.select(installation_table.c.secret).where(installation_table.c.id == 1)).scalar()
    if secret is None:
        raise RuntimeError("the shared database has no installation secret: run `solo migrate`")
    return bytes.fromhex(secret)
