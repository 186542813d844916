"""Tenant: one organisation of PPP Academy, with its settings and its customers.

A tenant creates its customers (each a Customer object) and keeps the list of the
ones it added, which enforces its plan's limit. To *list* customers it reads the
shared table `ppp_customers`, which every Customer keeps up to date in the same
commit as its own profile, instead of calling each Customer in turn.

Order of writes: add_customer first calls the Customer (which writes its own
directory row and commits it with its state), then records the link in the
tenant's own database. The tenant never writes the shared database itself, so it
holds no shared row locks while it waits on another object.
"""

from __future__ import annotations

import re
from typing import Literal

from solo import DurableObject, UserError, rpc
from solo.examples.customer import STATUSES, Status

Plan = Literal["free", "pro", "enterprise"]

PLAN_LIMITS = {"free": 100, "pro": 10_000, "enterprise": 1_000_000}  # most customers per plan
LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?")
LIST_LIMIT = 500


class Tenant(DurableObject):
    """An organisation: validated settings, customers it creates, and a directory listing of them."""

    migrations = [
        """
        CREATE TABLE settings (
            id INTEGER PRIMARY KEY CHECK (id = 0),
            display_name TEXT NOT NULL DEFAULT '',
            plan TEXT NOT NULL DEFAULT 'free',
            default_language TEXT NOT NULL DEFAULT 'en',
            ai_enabled INTEGER NOT NULL DEFAULT 1,
            default_agent TEXT,
            max_customers INTEGER,
            updated_ms INTEGER
        );
        INSERT INTO settings (id) VALUES (0);
        CREATE TABLE customers (
            id TEXT PRIMARY KEY,
            added_ms INTEGER NOT NULL
        );
        """,
    ]

    @rpc
    def get_settings(self) -> dict:
        """The organisation's settings, its plan's customer limit and how many customers it has."""
        row = self.sql.execute("SELECT * FROM settings").fetchone()
        settings = {key: row[key] for key in row.keys() if key != "id"}
        settings["display_name"] = settings["display_name"] or self.name
        settings["ai_enabled"] = bool(settings["ai_enabled"])
        settings["max_customers"] = _customer_limit(settings["plan"], settings["max_customers"])
        settings["customers"] = self._customer_count()
        return settings

    @rpc
    def update_settings(
        self,
        display_name: str | None = None,
        plan: Plan | None = None,
        default_language: str | None = None,
        ai_enabled: bool | None = None,
        default_agent: str | None = None,
        max_customers: int | None = None,
    ) -> dict:
        """Change the given settings. `max_customers` can only lower the plan's limit, and
        no change may bring the limit below the number of customers the tenant has."""
        changes = {
            "display_name": display_name,
            "plan": plan,
            "default_language": default_language,
            "ai_enabled": ai_enabled,
            "default_agent": default_agent,
            "max_customers": max_customers,
        }
        changes = {key: value for key, value in changes.items() if value is not None}
        if not changes:
            raise UserError("nothing to update: pass at least one setting", code="invalid_settings")
        problems = []
        if "display_name" in changes and not 1 <= len(changes["display_name"].strip()) <= 200:
            problems.append("display_name must be 1 to 200 characters")
        if "default_language" in changes and not LANGUAGE.fullmatch(changes["default_language"]):
            problems.append("default_language must be a language tag such as 'en' or 'pt-BR'")
        if "default_agent" in changes and not 1 <= len(changes["default_agent"]) <= 256:
            problems.append("default_agent must be an Agent name of 1 to 256 characters")
        if "max_customers" in changes and changes["max_customers"] < 1:
            problems.append("max_customers must be at least 1")
        stored = self.sql.execute("SELECT plan, max_customers FROM settings").fetchone()
        limit = _customer_limit(
            changes.get("plan", stored["plan"]), changes.get("max_customers", stored["max_customers"])
        )
        if limit < self._customer_count():
            problems.append(f"the customer limit would become {limit}, below the {self._customer_count()} customers")
        if problems:
            raise UserError("; ".join(problems), code="invalid_settings")
        assignments = ", ".join(f"{key} = :{key}" for key in changes)  # keys come from the fixed list above
        self.sql.execute(f"UPDATE settings SET {assignments}, updated_ms = :now", {**changes, "now": self.ctx.now_ms()})
        return self.get_settings()

    @rpc
    def add_customer(
        self,
        customer_id: str,
        name: str,
        company: str = "",
        title: str = "",
        email: str = "",
        status: Status = "lead",
        lead_score: int = 0,
        language: str | None = None,
    ) -> dict:
        """Create the Customer object `customer_id` in this tenant and link it; returns its profile.

        The Customer writes its directory row itself, in its own commit; this call only
        records the link once the Customer exists. The language defaults to the tenant's.
        """
        settings = self.get_settings()
        if settings["customers"] >= settings["max_customers"]:
            raise UserError(
                f"plan {settings['plan']!r} allows {settings['max_customers']} customers", status=409, code="plan_limit"
            )
        profile = self.objects.get("Customer", customer_id).create(
            tenant=self.name,
            name=name,
            company=company,
            title=title,
            email=email,
            status=status,
            lead_score=lead_score,
            language=language or settings["default_language"],
        )
        self.sql.execute("INSERT INTO customers (id, added_ms) VALUES (?, ?)", (customer_id, self.ctx.now_ms()))
        return profile

    @rpc
    def list_customers(self, status: Status | None = None, limit: int = 100) -> list[dict]:
        """This tenant's customers from the shared directory, by name: id, name, company, status,
        lead_score, updated_at (epoch ms). Reads the shared database, not each Customer."""
        if not 1 <= limit <= LIST_LIMIT:
            raise UserError(f"limit must be between 1 and {LIST_LIMIT}", code="invalid_argument")
        # The filter is added only when given: Postgres cannot type `:status IS NULL`.
        where = {"tenant": self.name, **({"status": status} if status else {})}
        conditions = " AND ".join(f"{column} = :{column}" for column in where)
        return self.shared.query(
            "SELECT id, name, company, status, lead_score, updated_at FROM ppp_customers"
            f" WHERE {conditions} ORDER BY name, id LIMIT :limit",
            **where,
            limit=limit,
        )

    @rpc
    def customer_counts(self) -> dict[str, int]:
        """How many of this tenant's customers are in each status, from the shared directory."""
        rows = self.shared.query(
            "SELECT status, count(*) AS n FROM ppp_customers WHERE tenant = :tenant GROUP BY status",
            tenant=self.name,
        )
        counts = dict.fromkeys(STATUSES, 0)
        counts.update({row["status"]: row["n"] for row in rows})
        return counts

    def _customer_count(self) -> int:
        return self.sql.execute("SELECT count(*) FROM customers").fetchone()[0]


def _customer_limit(plan: str, max_customers: int | None) -> int:
    """The plan's limit, lowered by the tenant's own `max_customers` if set."""
    return min(PLAN_LIMITS[plan], max_customers or PLAN_LIMITS[plan])
