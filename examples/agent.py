"""Agent: one AI assistant with its own configuration, long-term memories and feedback log.

All of it lives in the object's own database, so an agent keeps its personality and
what it learned across restarts. Replies come from the model interface in
examples/models.py (a deterministic local model unless SOLO_EXAMPLES_MODEL names another).
"""

from __future__ import annotations

import json
from typing import Any

from solo import DurableObject, UserError, rpc
from solo.examples.models import LOCAL_MODEL_NAME, ModelError, get_model

# What generate_response recalls into the system prompt.
PROMPT_MEMORIES = 5
PROMPT_MIN_IMPORTANCE = 0.3
POSITIVE_RATING = 4  # ratings from here up become a memory
MAX_TEXT = 20_000


class Agent(DurableObject):
    """An AI assistant: validated configuration, memories with importance and use counts,
    feedback that turns good ratings into memories, and replies built from all of them."""

    migrations = [
        f"""
        CREATE TABLE config (
            id INTEGER PRIMARY KEY CHECK (id = 0),
            name TEXT NOT NULL DEFAULT 'Kira',
            persona TEXT NOT NULL DEFAULT '',
            system_prompt TEXT NOT NULL DEFAULT '',
            model TEXT NOT NULL DEFAULT '{LOCAL_MODEL_NAME}',
            temperature REAL NOT NULL DEFAULT 0.7,
            max_tokens INTEGER NOT NULL DEFAULT 1024,
            tools TEXT NOT NULL DEFAULT '[]',
            updated_ms INTEGER
        );
        INSERT INTO config (id) VALUES (0);
        CREATE TABLE memory (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            type TEXT NOT NULL,
            content TEXT NOT NULL,
            importance REAL NOT NULL,
            access_count INTEGER NOT NULL DEFAULT 0,
            last_accessed_ms INTEGER,
            created_ms INTEGER NOT NULL
        );
        CREATE INDEX memory_by_importance ON memory (importance DESC);
        CREATE TABLE feedback (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id TEXT,
            message_id TEXT,
            rating INTEGER NOT NULL,
            comment TEXT NOT NULL,
            memory_id INTEGER,
            created_ms INTEGER NOT NULL
        );
        """,
    ]

    def on_start(self) -> None:
        self.replies_since_start = 0  # in-memory: resets when the object is evicted

    # -- configuration ----------------------------------------------------------------

    @rpc
    def get_config(self) -> dict:
        """The agent's configuration."""
        row = self.sql.execute("SELECT * FROM config").fetchone()
        config = {key: row[key] for key in row.keys() if key != "id"}
        config["tools"] = json.loads(config["tools"])
        return config

    @rpc
    def update_config(
        self,
        name: str | None = None,
        persona: str | None = None,
        system_prompt: str | None = None,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        tools: list[str] | None = None,
    ) -> dict:
        """Change the given fields (the others stay); every value is checked before any is written."""
        changes = {
            "name": name,
            "persona": persona,
            "system_prompt": system_prompt,
            "model": model,
            "temperature": temperature,
            "max_tokens": max_tokens,
            "tools": tools,
        }
        changes = {key: value for key, value in changes.items() if value is not None}
        if not changes:
            raise UserError("nothing to update: pass at least one field", code="invalid_config")
        _check_config(changes)
        if "tools" in changes:
            changes["tools"] = json.dumps(changes["tools"])
        assignments = ", ".join(f"{key} = :{key}" for key in changes)  # keys come from the fixed list above
        self.sql.execute(f"UPDATE config SET {assignments}, updated_ms = :now", {**changes, "now": self._now()})
        return self.get_config()

    # -- memories ------------------------------------------------------------------------

    @rpc
    def add_memory(self, type: str, content: str, importance: float = 0.5) -> dict:
        """Remember something; `importance` from 0 to 1 decides what is recalled first."""
        _check_text("type", type, max_length=64)
        _check_text("content", content)
        _check_importance(importance)
        memory_id = self.sql.execute(
            "INSERT INTO memory (type, content, importance, created_ms) VALUES (?, ?, ?, ?)",
            (type, content, importance, self._now()),
        ).lastrowid
        return self._memory(memory_id)

    @rpc
    def recall_memories(self, type: str | None = None, limit: int = 10, min_importance: float = 0.0) -> list[dict]:
        """The most important memories (then the most recently used); each recall counts as an access."""
        if not 1 <= limit <= 100:
            raise UserError("limit must be between 1 and 100", code="invalid_argument")
        _check_importance(min_importance, field="min_importance")
        return self._recall(type, limit, min_importance)

    @rpc
    def list_memories(self, type: str | None = None) -> list[dict]:
        """Every memory, newest first, without counting an access."""
        rows = self.sql.execute(
            "SELECT * FROM memory WHERE :type IS NULL OR type = :type ORDER BY id DESC", {"type": type}
        ).fetchall()
        return [dict(row) for row in rows]

    @rpc
    def forget_memory(self, memory_id: int) -> bool:
        """Delete a memory; False if there was none with that id."""
        return self.sql.execute("DELETE FROM memory WHERE id = ?", (memory_id,)).rowcount == 1

    # -- feedback ------------------------------------------------------------------------

    @rpc
    def record_feedback(
        self,
        rating: int,
        comment: str = "",
        conversation_id: str | None = None,
        message_id: str | None = None,
    ) -> dict:
        """Log a rating from 1 to 5; a rating of 4 or 5 also becomes a memory of what worked."""
        if not 1 <= rating <= 5:
            raise UserError("rating must be between 1 and 5", code="invalid_rating")
        _check_text("comment", comment, required=False)
        memory_id = None
        if rating >= POSITIVE_RATING:
            where = f"message {message_id or '?'} of conversation {conversation_id or '?'}"
            content = f"Rated {rating}/5: {comment}" if comment else f"Rated {rating}/5"
            memory_id = self.add_memory("positive_feedback", f"{content} ({where})", 0.7)["id"]
        feedback_id = self.sql.execute(
            "INSERT INTO feedback (conversation_id, message_id, rating, comment, memory_id, created_ms)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (conversation_id, message_id, rating, comment, memory_id, self._now()),
        ).lastrowid
        return {"id": feedback_id, "rating": rating, "memory_id": memory_id}

    @rpc
    def stats(self) -> dict:
        """Counts of memories and feedback, the average rating, and replies since the object started."""
        memories = self.sql.execute("SELECT count(*) FROM memory").fetchone()[0]
        feedback = self.sql.execute("SELECT count(*), avg(rating) FROM feedback").fetchone()
        return {
            "memories": memories,
            "feedback": feedback[0],
            "average_rating": round(feedback[1], 2) if feedback[1] is not None else None,
            "replies_since_start": self.replies_since_start,
        }

    # -- replies -------------------------------------------------------------------------

    @rpc
    def generate_response(
        self,
        messages: list[dict[str, str]],
        customer_context: str | None = None,
        customer: str | None = None,
    ) -> dict:
        """Reply to a conversation (`[{"role": "user" | "assistant", "content": ...}]`).

        The system prompt is built from the configuration, the recalled memories and the
        customer's context: given as text, or fetched from the Customer object named `customer`.
        """
        _check_messages(messages)
        if customer is not None:
            if customer_context is not None:
                raise UserError("pass customer_context or customer, not both", code="invalid_argument")
            customer_context = self.objects.get("Customer", customer).get_context_for_ai()["context"]
        config = self.get_config()
        memories = self._recall(None, PROMPT_MEMORIES, PROMPT_MIN_IMPORTANCE)
        prompt = system_prompt(config, [m["content"] for m in memories], customer_context)
        try:
            text = get_model(config["model"]).complete(
                [{"role": "system", "content": prompt}, *messages],
                max_tokens=config["max_tokens"],
                temperature=config["temperature"],
            )
        except ModelError as exc:
            raise UserError(str(exc), status=502, code="model_error") from exc
        self.replies_since_start += 1
        return {"response": text, "model": config["model"], "memories_used": len(memories)}

    # -- helpers -------------------------------------------------------------------------

    def _recall(self, type: str | None, limit: int, min_importance: float) -> list[dict]:
        rows = self.sql.execute(
            "SELECT id FROM memory WHERE importance >= :min AND (:type IS NULL OR type = :type)"
            " ORDER BY importance DESC, last_accessed_ms DESC NULLS LAST, id DESC LIMIT :limit",
            {"min": min_importance, "type": type, "limit": limit},
        ).fetchall()
        ids = [row["id"] for row in rows]
        self.sql.executemany(
            "UPDATE memory SET access_count = access_count + 1, last_accessed_ms = ? WHERE id = ?",
            [(self._now(), memory_id) for memory_id in ids],
        )
        return [self._memory(memory_id) for memory_id in ids]

    def _memory(self, memory_id: int) -> dict:
        return dict(self.sql.execute("SELECT * FROM memory WHERE id = ?", (memory_id,)).fetchone())

    def _now(self) -> int:
        return self.ctx.now_ms()


def system_prompt(config: dict, memories: list[str], customer_context: str | None) -> str:
    """The system message: who the agent is, then the customer, then what it remembers."""
    parts = [config["system_prompt"] or f"You are {config['name']}, an AI assistant."]
    if config["persona"]:
        parts.append(f"Personality: {config['persona']}")
    if config["tools"]:
        parts.append("Tools you may use: " + ", ".join(config["tools"]))
    if customer_context:
        parts.append(customer_context)
    if memories:
        parts.append("Relevant memories:\n" + "\n".join(f"- {m}" for m in memories))
    return "\n\n".join(parts)


def _check_config(changes: dict[str, Any]) -> None:
    problems = []
    for field in ("name", "model"):
        if field in changes and not 1 <= len(changes[field].strip()) <= 100:
            problems.append(f"{field} must be 1 to 100 characters")
    for field in ("persona", "system_prompt"):
        if field in changes and len(changes[field]) > MAX_TEXT:
            problems.append(f"{field} must be at most {MAX_TEXT} characters")
    if "temperature" in changes and not 0.0 <= changes["temperature"] <= 2.0:
        problems.append("temperature must be between 0 and 2")
    if "max_tokens" in changes and not 1 <= changes["max_tokens"] <= 32_768:
        problems.append("max_tokens must be between 1 and 32768")
    if "tools" in changes:
        tools = changes["tools"]
        if any(not tool.strip() or len(tool) > 64 for tool in tools):
            problems.append("tools must be names of 1 to 64 characters")
        if len(set(tools)) != len(tools):
            problems.append("tools must not repeat")
    if problems:
        raise UserError("; ".join(problems), code="invalid_config")


def _check_messages(messages: list[dict[str, str]]) -> None:
    if not messages:
        raise UserError("messages must not be empty", code="invalid_messages")
    for i, message in enumerate(messages):
        if set(message) != {"role", "content"} or message["role"] not in ("user", "assistant"):
            raise UserError(
                f"messages[{i}] must be {{'role': 'user' | 'assistant', 'content': ...}}", code="invalid_messages"
            )
    if messages[-1]["role"] != "user":
        raise UserError("the last message must be the user's", code="invalid_messages")


def _check_text(field: str, value: str, *, max_length: int = MAX_TEXT, required: bool = True) -> None:
    if required and not value.strip():
        raise UserError(f"{field} must not be empty", code="invalid_argument")
    if len(value) > max_length:
        raise UserError(f"{field} must be at most {max_length} characters", code="invalid_argument")


def _check_importance(value: float, *, field: str = "importance") -> None:
    if not 0.0 <= value <= 1.0:
        raise UserError(f"{field} must be between 0 and 1", code="invalid_argument")
