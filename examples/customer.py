"""Customer: one contact of a tenant, with a versioned AI context that follows it everywhere.

The profile (name, company, status, lead score...) is mirrored to the shared table
`ppp_customers` in the same call that changes it, so the row commits atomically with
the object's state; Tenant lists its customers from there. The AI context (summary,
key facts, pain points, preferences, goals...) is versioned: every change bumps
`version`, records who made it and keeps the changed values in `context_versions`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, Literal

from solo import DurableObject, UserError, rpc
from solo.examples.models import ModelError, get_model

Status = Literal["lead", "prospect", "customer", "churned"]
Severity = Literal["low", "medium", "high"]
Sentiment = Literal["positive", "neutral", "negative"]

STATUSES = ("lead", "prospect", "customer", "churned")
LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?")
MAX_TEXT = 5_000
ENRICH_INTERACTIONS = 20  # the most recent inbound interactions an enrichment reads

# Context fields update_context accepts, with the values each takes.
TEXT_FIELDS = ("summary", "relationship_notes", "conversation_style", "best_contact_time", "last_interaction_summary")
CHOICE_FIELDS = {
    "response_urgency": ("low", "normal", "high", "urgent"),
    "risk_level": ("low", "medium", "high"),
    "sentiment_trend": ("positive", "neutral", "negative"),
    "engagement_level": ("low", "medium", "high"),
}
LIST_FIELDS = ("goals", "escalation_triggers", "products_owned", "products_interested")
# Kept as JSON text in their columns.
JSON_FIELDS = ("key_facts", "pain_points", "preferences", *LIST_FIELDS)

ENRICH_INSTRUCTIONS = """You analyse a customer's interactions and keep their profile context up to date.
The user message holds what the customer said recently, newest first, one statement per line.
Respond only with a JSON object holding the fields that need updating:
{"summary": "2-3 sentences", "key_facts": ["new facts"], "pain_points": ["new issues"], "goals": ["goals"],
 "sentiment_trend": "positive|neutral|negative", "engagement_level": "high|medium|low",
 "conversation_style": "how they communicate", "risk_level": "low|medium|high"}"""


class Customer(DurableObject):
    """A tenant's contact: profile, versioned AI context, interactions, and AI enrichment."""

    migrations = [
        """
        CREATE TABLE profile (
            id INTEGER PRIMARY KEY CHECK (id = 0),
            tenant TEXT NOT NULL,
            name TEXT NOT NULL,
            company TEXT NOT NULL,
            title TEXT NOT NULL,
            email TEXT NOT NULL,
            status TEXT NOT NULL,
            lead_score INTEGER NOT NULL,
            language TEXT NOT NULL,
            created_ms INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL
        );
        CREATE TABLE ai_context (
            id INTEGER PRIMARY KEY CHECK (id = 0),
            summary TEXT NOT NULL DEFAULT '',
            key_facts TEXT NOT NULL DEFAULT '[]',
            preferences TEXT NOT NULL DEFAULT '{}',
            pain_points TEXT NOT NULL DEFAULT '[]',
            goals TEXT NOT NULL DEFAULT '[]',
            relationship_notes TEXT NOT NULL DEFAULT '',
            conversation_style TEXT NOT NULL DEFAULT '',
            best_contact_time TEXT NOT NULL DEFAULT '',
            response_urgency TEXT NOT NULL DEFAULT 'normal',
            escalation_triggers TEXT NOT NULL DEFAULT '[]',
            products_owned TEXT NOT NULL DEFAULT '[]',
            products_interested TEXT NOT NULL DEFAULT '[]',
            lifetime_value REAL NOT NULL DEFAULT 0,
            risk_level TEXT NOT NULL DEFAULT 'low',
            last_interaction_summary TEXT NOT NULL DEFAULT '',
            sentiment_trend TEXT NOT NULL DEFAULT 'neutral',
            engagement_level TEXT NOT NULL DEFAULT 'medium',
            auto_update_enabled INTEGER NOT NULL DEFAULT 1,
            version INTEGER NOT NULL DEFAULT 1,
            updated_ms INTEGER NOT NULL,
            updated_by TEXT NOT NULL
        );
        CREATE TABLE context_versions (
            version INTEGER PRIMARY KEY,
            updated_ms INTEGER NOT NULL,
            updated_by TEXT NOT NULL,
            changes TEXT NOT NULL
        );
        CREATE TABLE interactions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            direction TEXT NOT NULL,
            content TEXT NOT NULL,
            sentiment TEXT,
            at_ms INTEGER NOT NULL
        );
        """,
    ]

    # -- profile -------------------------------------------------------------------------

    @rpc
    def create(
        self,
        tenant: str,
        name: str,
        company: str = "",
        title: str = "",
        email: str = "",
        status: Status = "lead",
        lead_score: int = 0,
        language: str = "en",
    ) -> dict:
        """Create the customer in `tenant`, once (then 409 customer_exists). Tenant.add_customer
        calls this; called directly, the tenant neither links nor counts the customer."""
        if self._profile_row() is not None:
            raise UserError(f"customer {self.name!r} already exists", status=409, code="customer_exists")
        profile = dict(
            tenant=tenant,
            name=name,
            company=company,
            title=title,
            email=email,
            status=status,
            lead_score=lead_score,
            language=language,
        )
        _check_profile(profile)
        now = self.ctx.now_ms()
        self.sql.execute(
            "INSERT INTO profile VALUES (0, :tenant, :name, :company, :title, :email, :status, :lead_score,"
            " :language, :now, :now)",
            {**profile, "now": now},
        )
        self.sql.execute("INSERT INTO ai_context (id, updated_ms, updated_by) VALUES (0, ?, 'create')", (now,))
        self._record_version(1, now, "create", {})
        self._publish_directory_row()
        return self.get_profile()

    @rpc
    def get_profile(self) -> dict:
        """The profile: id, tenant, name, company, title, email, status, lead_score, language, times."""
        row = self._require_profile()
        return {"id": self.name, **{key: row[key] for key in row.keys() if key != "id"}}

    @rpc
    def update_profile(
        self,
        name: str | None = None,
        company: str | None = None,
        title: str | None = None,
        email: str | None = None,
        status: Status | None = None,
        lead_score: int | None = None,
        language: str | None = None,
    ) -> dict:
        """Change the given profile fields; the tenant's directory row changes in the same commit."""
        self._require_profile()
        changes = dict(
            name=name,
            company=company,
            title=title,
            email=email,
            status=status,
            lead_score=lead_score,
            language=language,
        )
        changes = {key: value for key, value in changes.items() if value is not None}
        if not changes:
            raise UserError("nothing to update: pass at least one field", code="invalid_profile")
        _check_profile(changes)
        assignments = ", ".join(f"{key} = :{key}" for key in changes)  # keys come from the fixed list above
        self.sql.execute(f"UPDATE profile SET {assignments}, updated_ms = :now", {**changes, "now": self.ctx.now_ms()})
        self._publish_directory_row()
        return self.get_profile()

    # -- AI context ----------------------------------------------------------------------

    @rpc
    def get_context(self) -> dict:
        """The structured AI context, with its version and who last changed it."""
        self._require_profile()
        row = self.sql.execute("SELECT * FROM ai_context").fetchone()
        context = {key: row[key] for key in row.keys() if key != "id"}
        for field in JSON_FIELDS:
            context[field] = json.loads(context[field])
        context["auto_update_enabled"] = bool(context["auto_update_enabled"])
        return context

    @rpc
    def update_context(self, changes: dict[str, Any], updated_by: str = "manual") -> dict:
        """Set context fields (text, choices, lists of strings, preferences, lifetime_value,
        auto_update_enabled); key facts and pain points have their own methods."""
        _check_text("updated_by", updated_by, max_length=100)
        _check_context_changes(changes)
        return self._apply(changes, updated_by)

    @rpc
    def add_key_fact(self, fact: str, source: str = "manual") -> dict:
        """Add a fact unless the same text is already known."""
        _check_text("fact", fact)
        return self._apply({"key_facts": self._with_new_facts([fact], source)}, source)

    @rpc
    def add_pain_point(self, issue: str, severity: Severity = "medium") -> dict:
        """Record an open pain point; resolve it later by its index."""
        _check_text("issue", issue)
        pain_points = self.get_context()["pain_points"]
        pain_points.append(_pain_point(issue, severity, "manual", self.ctx.now_ms()))
        return self._apply({"pain_points": pain_points}, "manual")

    @rpc
    def resolve_pain_point(self, index: int) -> dict:
        """Mark the pain point at `index` (0-based, in the order added) resolved."""
        pain_points = self.get_context()["pain_points"]
        if not 0 <= index < len(pain_points):
            raise UserError(f"no pain point at index {index}", status=404, code="pain_point_not_found")
        if pain_points[index]["resolved"]:
            raise UserError(f"pain point {index} is already resolved", status=409, code="already_resolved")
        pain_points[index] = {**pain_points[index], "resolved": True, "resolved_ms": self.ctx.now_ms()}
        return self._apply({"pain_points": pain_points}, "manual")

    @rpc
    def set_preference(self, key: str, value: str | int | float | bool | None) -> dict:
        """Set one preference (None removes it)."""
        _check_text("key", key, max_length=100)
        preferences = self.get_context()["preferences"]
        if value is None:
            preferences.pop(key, None)
        else:
            preferences[key] = value
        return self._apply({"preferences": preferences}, "manual")

    @rpc
    def context_history(self, limit: int = 20) -> list[dict]:
        """The context's versions, newest first: who changed which fields to what, and when."""
        self._require_profile()
        if not 1 <= limit <= 500:
            raise UserError("limit must be between 1 and 500", code="invalid_argument")
        rows = self.sql.execute("SELECT * FROM context_versions ORDER BY version DESC LIMIT ?", (limit,)).fetchall()
        return [{**dict(row), "changes": json.loads(row["changes"])} for row in rows]

    @rpc
    def get_context_for_ai(self) -> dict:
        """The context as a text block to put in a model's system prompt, with its version."""
        profile, context = self.get_profile(), self.get_context()
        interactions = self.sql.execute("SELECT count(*) FROM interactions").fetchone()[0]
        return {
            "context": context_text(profile, context),
            "version": context["version"],
            "interactions": interactions,
        }

    # -- interactions and enrichment -----------------------------------------------------

    @rpc
    def record_interaction(
        self,
        kind: str,
        content: str,
        direction: Literal["inbound", "outbound"] = "inbound",
        sentiment: Sentiment | None = None,
    ) -> dict:
        """Log a message, call or meeting; unless auto updates are off, it becomes the
        context's last interaction (and sets the sentiment trend when given)."""
        self._require_profile()
        _check_text("kind", kind, max_length=64)
        _check_text("content", content)
        now = self.ctx.now_ms()
        interaction_id = self.sql.execute(
            "INSERT INTO interactions (kind, direction, content, sentiment, at_ms) VALUES (?, ?, ?, ?, ?)",
            (kind, direction, content, sentiment, now),
        ).lastrowid
        context = self.get_context()
        if context["auto_update_enabled"]:
            day = dt.datetime.fromtimestamp(now / 1000, dt.UTC).date().isoformat()
            changes: dict[str, Any] = {
                "last_interaction_summary": f"{direction} {kind} on {day}: {_clip(content, 200)}"
            }
            if sentiment:
                changes["sentiment_trend"] = sentiment
            context = self._apply(changes, "auto")
        return {"interaction_id": interaction_id, "version": context["version"]}

    @rpc
    def enrich(self) -> dict:
        """Ask the model to analyse recent inbound interactions and merge its findings into the
        context: new facts, pain points and goals are added to the lists, never replace them."""
        profile, context = self.get_profile(), self.get_context()
        rows = self.sql.execute(
            "SELECT content FROM interactions WHERE direction = 'inbound' ORDER BY id DESC LIMIT ?",
            (ENRICH_INTERACTIONS,),
        ).fetchall()
        said = [row["content"] for row in rows]
        if not said:
            return {"applied": [], "ignored": [], "version": context["version"]}
        current = json.dumps({"profile": profile, "context": context}, indent=1)
        messages = [
            {"role": "system", "content": f"{ENRICH_INSTRUCTIONS}\n\nCurrent profile and context:\n{current}"},
            {"role": "user", "content": "\n".join(said)},
        ]
        try:
            answer = get_model().complete(messages, max_tokens=1024, temperature=0.3, json_output=True)
            findings = json.loads(answer)
        except (ModelError, ValueError) as exc:
            raise UserError(f"enrichment failed: {exc}", status=502, code="model_error") from exc
        if not isinstance(findings, dict):
            raise UserError("enrichment failed: the model did not answer a JSON object", status=502, code="model_error")
        changes, ignored = self._merge_findings(findings, context)
        applied = sorted(field for field, value in changes.items() if context[field] != value)
        context = self._apply(changes, "ai_enrichment")
        return {"applied": applied, "ignored": ignored, "version": context["version"]}

    # -- helpers -------------------------------------------------------------------------

    def _apply(self, changes: dict[str, Any], updated_by: str) -> dict:
        """Write the fields that differ, as one new version; no difference, no new version."""
        current = self.get_context()
        changed = {key: value for key, value in changes.items() if current[key] != value}
        if not changed:
            return current
        version, now = current["version"] + 1, self.ctx.now_ms()
        columns = {key: json.dumps(value) if key in JSON_FIELDS else value for key, value in changed.items()}
        assignments = ", ".join(f"{key} = :{key}" for key in columns)  # keys were checked against the known fields
        self.sql.execute(
            f"UPDATE ai_context SET {assignments}, version = :version, updated_ms = :now, updated_by = :by",
            {**columns, "version": version, "now": now, "by": updated_by},
        )
        self._record_version(version, now, updated_by, changed)
        return self.get_context()

    def _record_version(self, version: int, now: int, updated_by: str, changes: dict[str, Any]) -> None:
        self.sql.execute(
            "INSERT INTO context_versions VALUES (?, ?, ?, ?)", (version, now, updated_by, json.dumps(changes))
        )

    def _with_new_facts(self, facts: list[str], source: str) -> list[dict]:
        key_facts = self.get_context()["key_facts"]
        known = {f["fact"] for f in key_facts}
        for fact in facts:
            if fact not in known:
                key_facts.append({"fact": fact, "source": source, "added_ms": self.ctx.now_ms()})
                known.add(fact)
        return key_facts

    def _merge_findings(self, findings: dict[str, Any], context: dict) -> tuple[dict[str, Any], list[str]]:
        """The model's answer as context changes; fields it got wrong are ignored, not fatal."""
        changes: dict[str, Any] = {}
        ignored = []
        now = self.ctx.now_ms()
        for field, value in findings.items():
            if field == "key_facts" and _strings(value):
                changes[field] = self._with_new_facts(value, "ai")
            elif field == "pain_points" and _strings(value):
                known = {p["issue"] for p in context["pain_points"]}
                new = [_pain_point(issue, "medium", "ai", now) for issue in dict.fromkeys(value) if issue not in known]
                changes[field] = context["pain_points"] + new
            elif field == "goals" and _strings(value):
                changes[field] = list(dict.fromkeys(context["goals"] + value))
            elif field in ("summary", "conversation_style", *CHOICE_FIELDS) and _valid_field(field, value):
                changes[field] = value
            else:
                ignored.append(field)
        return changes, sorted(ignored)

    def _publish_directory_row(self) -> None:
        """Upsert this customer's row of the shared directory; commits with this call."""
        row = self._require_profile()
        self.shared.execute(
            "INSERT INTO ppp_customers (id, tenant, name, company, status, lead_score, updated_at)"
            " VALUES (:id, :tenant, :name, :company, :status, :lead_score, :updated_at)"
            " ON CONFLICT (id) DO UPDATE SET tenant = excluded.tenant, name = excluded.name,"
            " company = excluded.company, status = excluded.status, lead_score = excluded.lead_score,"
            " updated_at = excluded.updated_at",
            id=self.name,
            tenant=row["tenant"],
            name=row["name"],
            company=row["company"],
            status=row["status"],
            lead_score=row["lead_score"],
            updated_at=row["updated_ms"],
        )

    def _profile_row(self) -> Any:
        return self.sql.execute("SELECT * FROM profile").fetchone()

    def _require_profile(self) -> Any:
        row = self._profile_row()
        if row is None:
            raise UserError(f"customer {self.name!r} does not exist", status=404, code="customer_not_found")
        return row


def context_text(profile: dict, context: dict) -> str:
    """The context block injected into every AI interaction with this customer."""
    open_pains = [p for p in context["pain_points"] if not p["resolved"]]
    preferences = ", ".join(f"{k}: {v}" for k, v in sorted(context["preferences"].items()))
    sections = {
        "Identity": [
            f"Name: {profile['name']}",
            f"Company: {profile['company'] or 'N/A'}",
            f"Title: {profile['title'] or 'N/A'}",
            f"Status: {profile['status']}",
            f"Lead score: {profile['lead_score']}/100",
        ],
        "Summary": context["summary"] or "No summary yet.",
        "Key facts": [f["fact"] for f in context["key_facts"]] or ["No key facts recorded yet"],
        "Communication preferences": [
            f"Preferred style: {context['conversation_style'] or 'not specified'}",
            f"Best contact time: {context['best_contact_time'] or 'any time'}",
            f"Response urgency: {context['response_urgency']}",
            f"Language: {profile['language']}",
            *([f"Preferences: {preferences}"] if preferences else []),
        ],
        "Sentiment and engagement": [
            f"Sentiment trend: {context['sentiment_trend']}",
            f"Engagement level: {context['engagement_level']}",
            f"Risk level: {context['risk_level']}",
        ],
        "Open pain points": [f"[{p['severity']}] {p['issue']}" for p in open_pains] or ["No open pain points"],
        "Goals": context["goals"] or ["Not identified yet"],
        "Products": [
            f"Using: {', '.join(context['products_owned']) or 'none'}",
            f"Interested in: {', '.join(context['products_interested']) or 'unknown'}",
        ],
        "Topics to avoid": context["escalation_triggers"] or ["None identified"],
        "Relationship notes": context["relationship_notes"] or "None.",
        "Last interaction": context["last_interaction_summary"] or "None recorded.",
    }
    lines = ["## Customer context"]
    for heading, body in sections.items():
        lines += ["", f"### {heading}"]
        lines += [f"- {item}" for item in body] if isinstance(body, list) else [body]
    return "\n".join(lines)


def _pain_point(issue: str, severity: str, source: str, now: int) -> dict:
    return {"issue": issue, "severity": severity, "source": source, "identified_ms": now, "resolved": False}


def _check_profile(profile: dict[str, Any]) -> None:
    problems = []
    if "name" in profile and not 1 <= len(profile["name"].strip()) <= 200:
        problems.append("name must be 1 to 200 characters")
    if "tenant" in profile and not 1 <= len(profile["tenant"].strip()) <= 256:
        problems.append("tenant must be 1 to 256 characters")
    for field in ("company", "title", "email"):
        if len(profile.get(field, "")) > 200:
            problems.append(f"{field} must be at most 200 characters")
    if profile.get("email") and "@" not in profile["email"]:
        problems.append("email must contain '@'")
    if "lead_score" in profile and not 0 <= profile["lead_score"] <= 100:
        problems.append("lead_score must be between 0 and 100")
    if "language" in profile and not LANGUAGE.fullmatch(profile["language"]):
        problems.append("language must be a language tag such as 'en' or 'pt-BR'")
    if problems:
        raise UserError("; ".join(problems), code="invalid_profile")


def _check_context_changes(changes: dict[str, Any]) -> None:
    if not changes:
        raise UserError("changes must name at least one field", code="invalid_context")
    problems = []
    for field, value in changes.items():
        if field in ("key_facts", "pain_points"):
            problems.append(f"{field}: use add_key_fact / add_pain_point / resolve_pain_point")
        elif field == "preferences":
            if not isinstance(value, dict) or not all(isinstance(v, (str, int, float, bool)) for v in value.values()):
                problems.append("preferences must be an object of strings, numbers and booleans")
        elif field == "lifetime_value":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                problems.append("lifetime_value must be a number >= 0")
        elif field == "auto_update_enabled":
            if not isinstance(value, bool):
                problems.append("auto_update_enabled must be true or false")
        elif field in (*TEXT_FIELDS, *CHOICE_FIELDS, *LIST_FIELDS):
            if not _valid_field(field, value):
                problems.append(f"{field} has an invalid value")
        else:
            problems.append(f"unknown field {field!r}")
    if problems:
        raise UserError("; ".join(problems), code="invalid_context")


def _valid_field(field: str, value: Any) -> bool:
    if field in CHOICE_FIELDS:
        return value in CHOICE_FIELDS[field]
    if field in LIST_FIELDS:
        return _strings(value)
    return isinstance(value, str) and len(value) <= MAX_TEXT


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and 0 < len(v) <= MAX_TEXT for v in value)


def _check_text(field: str, value: str, *, max_length: int = MAX_TEXT) -> None:
    if not value.strip():
        raise UserError(f"{field} must not be empty", code="invalid_argument")
    if len(value) > max_length:
        raise UserError(f"{field} must be at most {max_length} characters", code="invalid_argument")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rstrip() + "..."
