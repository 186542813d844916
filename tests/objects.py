"""Durable object classes used by the tests."""

from __future__ import annotations

import os
import signal
import time
from typing import Literal

import sqlalchemy as sa

from solo import DurableObject, UserError, rpc


class Ledger(DurableObject):
    """Records when each call started and ended, to prove calls never overlap."""

    migrations = [
        "CREATE TABLE entries (seq INTEGER PRIMARY KEY AUTOINCREMENT, tag TEXT NOT NULL,"
        " started_ns INTEGER NOT NULL, ended_ns INTEGER NOT NULL)",
    ]

    def on_start(self) -> None:
        self.running = False

    @rpc
    def append(self, tag: str, sleep_ms: float = 0) -> int:
        if self.running:
            raise RuntimeError("overlapping calls")
        self.running = True
        try:
            started = time.monotonic_ns()
            if sleep_ms:
                time.sleep(sleep_ms / 1000)
            cursor = self.sql.execute(
                "INSERT INTO entries (tag, started_ns, ended_ns) VALUES (?, ?, ?)", (tag, started, time.monotonic_ns())
            )
            return cursor.lastrowid
        finally:
            self.running = False

    @rpc
    def entries(self) -> list[dict]:
        return [dict(r) for r in self.sql.execute("SELECT seq, tag, started_ns, ended_ns FROM entries ORDER BY seq")]


class SlowCounter(DurableObject):
    """Counter's increment and get, but an increment may take its time: a call still running when its
    worker is cut off from the network (bench/partition.py)."""

    migrations = [
        "CREATE TABLE counter (id INTEGER PRIMARY KEY CHECK (id = 0), value INTEGER NOT NULL)",
        "INSERT INTO counter VALUES (0, 0)",
    ]

    @rpc
    def increment(self, sleep_ms: int = 0) -> int:
        if sleep_ms > 0:
            time.sleep(sleep_ms / 1000)
        value = self.get() + 1
        self.sql.execute("UPDATE counter SET value = ?", (value,))
        return value

    @rpc
    def get(self) -> int:
        return self.sql.execute("SELECT value FROM counter").fetchone()["value"]


class Fragile(DurableObject):
    """Methods that fail in the ways a caller must be told about."""

    migrations = ["CREATE TABLE notes (text TEXT NOT NULL)"]

    @rpc
    def add(self, text: str) -> int:
        self.sql.execute("INSERT INTO notes VALUES (?)", (text,))
        return self.count()

    @rpc
    def add_then_fail(self, text: str, kind: Literal["user", "crash"] = "crash") -> None:
        self.sql.execute("INSERT INTO notes VALUES (?)", (text,))
        self.storage.put("last", text)
        if kind == "user":
            raise UserError("conflict: try later", status=409)
        raise ValueError("boom")

    @rpc
    def count(self) -> int:
        return self.sql.execute("SELECT count(*) FROM notes").fetchone()[0]

    @rpc
    def unsendable(self) -> dict:
        return {"when": object()}  # type: ignore[dict-item]

    @rpc
    def lone_surrogate(self, text: str) -> str:
        self.sql.execute("INSERT INTO notes VALUES (?)", (text,))
        return "\ud800"  # valid in Python, not encodable as UTF-8

    @rpc
    def slow(self, ms: int) -> int:
        time.sleep(ms / 1000)
        return ms

    @rpc
    def add_and_return(self, text: str, kib: int) -> str:
        """Adds a note, then returns `kib` KiB of text (with its quotes, 2 bytes more as JSON)."""
        self.sql.execute("INSERT INTO notes VALUES (?)", (text,))
        return "r" * (kib * 1024)


class Bulky(DurableObject):
    """Grows to any size, then changes one row: what one small update costs to ship."""

    migrations = [
        "CREATE TABLE filler (id INTEGER PRIMARY KEY, data BLOB NOT NULL)",
        "CREATE TABLE cell (id INTEGER PRIMARY KEY CHECK (id = 0), value INTEGER NOT NULL)",
        "INSERT INTO cell VALUES (0, 0)",
    ]

    @rpc
    def grow(self, kib: int) -> int:
        self.sql.executemany("INSERT INTO filler (data) VALUES (randomblob(1024))", [()] * kib)
        return self.sql.execute("SELECT count(*) FROM filler").fetchone()[0]

    @rpc
    def touch(self) -> int:
        self.sql.execute("UPDATE cell SET value = value + 1")
        return self.sql.execute("SELECT value FROM cell").fetchone()[0]


class Tally(DurableObject):
    """The target of calls between objects: counts what it is sent and can fail on request."""

    migrations = ["CREATE TABLE received (seq INTEGER PRIMARY KEY AUTOINCREMENT, tag TEXT NOT NULL)"]

    @rpc
    def add(self, tag: str = "") -> int:
        self.sql.execute("INSERT INTO received (tag) VALUES (?)", (tag,))
        return self.total()

    @rpc
    def total(self) -> int:
        return self.sql.execute("SELECT count(*) FROM received").fetchone()[0]

    @rpc
    def tags(self) -> list[str]:
        return [r[0] for r in self.sql.execute("SELECT tag FROM received ORDER BY seq")]

    @rpc
    def refuse(self, why: str, status: int = 409) -> None:
        self.sql.execute("INSERT INTO received (tag) VALUES ('refused')")
        raise UserError(why, status=status, code="refused")

    @rpc
    def crash(self) -> None:
        raise ValueError("tally crashed")


def _split(address: str) -> tuple[str, str]:
    class_name, slash, name = address.partition("/")
    if not slash:
        raise UserError(f"an object is named as Class/name, not {address[:100]!r}")
    return class_name, name


class Relay(DurableObject):
    """Calls other objects named by its arguments ("Class/name"): chains, cycles, sends."""

    migrations = ["CREATE TABLE log (seq INTEGER PRIMARY KEY AUTOINCREMENT, what TEXT NOT NULL)"]

    @rpc
    def hop(self, route: list[str]) -> list[str]:
        """Call route[0].hop(route[1:]) and wait; returns every object the call passed through."""
        self.sql.execute("INSERT INTO log (what) VALUES (?)", (f"hop {route}",))
        if not route:
            return [f"{self.class_name}/{self.name}"]
        class_name, name = _split(route[0])
        return [f"{self.class_name}/{self.name}", *self.objects.get(class_name, name).hop(route=route[1:])]

    @rpc
    def ask(self, target: str, method: str, args: dict | None = None) -> object:
        """Call target.method(**args) and wait for its result."""
        class_name, name = _split(target)
        return self.objects.get(class_name, name).call(method, **(args or {}))

    @rpc
    def ask_safely(self, target: str, method: str, args: dict | None = None, timeout_s: float | None = None) -> dict:
        """Like ask, but report a failure of the target as a value."""
        from solo import RemoteCallError

        class_name, name = _split(target)
        stub = self.objects.get(class_name, name, timeout_s=timeout_s)
        try:
            return {"result": stub.call(method, **(args or {}))}
        except RemoteCallError as exc:
            return {"error": {"code": exc.code, "message": exc.message, "type": type(exc).__name__}}

    @rpc
    def tell(self, target: str, tags: list[str], fail: bool = False) -> int:
        """Send target.add(tag=...) for each tag (fire-and-forget), then fail if asked to."""
        class_name, name = _split(target)
        stub = self.objects.get(class_name, name)
        for i, tag in enumerate(tags):
            if i % 2:
                stub.send.add(tag=tag)
            else:
                stub.send("add", tag=tag)
        self.sql.execute("INSERT INTO log (what) VALUES (?)", (f"told {target} {tags}",))
        if fail:
            raise ValueError("relay failed after sending")
        return len(tags)

    @rpc
    def log(self) -> list[str]:
        return [r[0] for r in self.sql.execute("SELECT what FROM log ORDER BY seq")]

    @rpc
    def forget_call(self, call_id: str) -> None:
        """Drop a recorded outcome, as if that call's commit had been lost (tests of re-runs)."""
        # solo's tables are closed to self.sql: reach past it, as only a test may
        self.sql._connection.execute("DELETE FROM _solo_calls WHERE call_id = ?", (call_id,))  # noqa: SLF001


class Alarmed(DurableObject):
    """Alarms and schedules: every successful fire is a row in `fires`; attempts are kept in memory."""

    migrations = [
        "CREATE TABLE fires (seq INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,"
        " scheduled_ms INTEGER NOT NULL, retry_count INTEGER NOT NULL, fired_ms INTEGER NOT NULL, token TEXT)",
    ]

    def on_start(self) -> None:
        self.attempts: list[dict] = []

    def alarm(self, info) -> None:
        self.attempts.append({"retry_count": info.retry_count, "is_retry": info.is_retry})
        self._record("_alarm", info.scheduled_ms, info.retry_count, info.token)
        if info.retry_count < self.storage.get("fail_times", 0):
            raise RuntimeError(f"failing on purpose (retry {info.retry_count})")
        then = self.storage.get("then_set_ms")
        if then is not None:
            self.storage.set_alarm(then)
            self.storage.delete("then_set_ms")

    def tick(self, name: str) -> None:
        fire = self.ctx.now_ms()
        self._record(name, fire, 0, None)

    def _record(self, name: str, scheduled_ms: int, retry_count: int, token: str | None) -> None:
        self.sql.execute(
            "INSERT INTO fires (name, scheduled_ms, retry_count, fired_ms, token) VALUES (?, ?, ?, ?, ?)",
            (name, scheduled_ms, retry_count, self.ctx.now_ms(), token),
        )

    @rpc
    def set_alarm(self, at_ms: int, fail_times: int = 0, then_set_ms: int | None = None) -> int | None:
        self.storage.put("fail_times", fail_times)
        if then_set_ms is not None:
            self.storage.put("then_set_ms", then_set_ms)
        self.storage.set_alarm(at_ms)
        return self.storage.get_alarm()

    @rpc
    def set_alarm_then_fail(self, at_ms: int) -> None:
        self.storage.set_alarm(at_ms)
        raise UserError("changed my mind")

    @rpc
    def get_alarm(self) -> int | None:
        return self.storage.get_alarm()

    @rpc
    def delete_alarm(self) -> None:
        self.storage.delete_alarm()

    @rpc
    def every(self, name: str, seconds: float, missed: str = "fire_once", grace_s: float = 60.0) -> dict:
        return self.schedule(name, "tick", every_s=seconds, kwargs={"name": name}, missed=missed, grace_s=grace_s)

    @rpc
    def cron(self, name: str, expression: str, missed: str = "fire_once") -> dict:
        return self.schedule(name, "tick", cron=expression, kwargs={"name": name}, missed=missed)

    @rpc
    def once(self, name: str, at_ms: int) -> dict:
        return self.schedule(name, "tick", at=at_ms, kwargs={"name": name})

    @rpc
    def many(self, prefix: str, count: int, at_ms: int) -> int:
        for i in range(count):
            self.schedule(f"{prefix}{i}", "tick", at=at_ms + i, kwargs={"name": f"{prefix}{i}"})
        return count

    @rpc
    def schedule_as_given(self, spec: dict) -> dict:
        return self.schedule(**spec)

    @rpc
    def cancel(self, name: str) -> bool:
        return self.cancel_schedule(name)

    @rpc
    def listing(self) -> list[dict]:
        return self.schedules()

    @rpc
    def fires(self) -> list[dict]:
        return [dict(r) for r in self.sql.execute("SELECT * FROM fires ORDER BY seq")]

    @rpc
    def attempts_seen(self) -> list[dict]:
        return self.attempts


class Notebook(DurableObject):
    """Keeps notes both in its own table and in a shared one (test_shared_notes, made by the tests)."""

    migrations = ["CREATE TABLE notes (text TEXT NOT NULL)"]

    def on_start(self) -> None:
        rows = self.shared.query(
            "SELECT text FROM test_shared_notes WHERE owner = :owner ORDER BY text", owner=self.name
        )
        self.shared_at_start = [r["text"] for r in rows]

    def _note(self, text: str) -> None:
        self.sql.execute("INSERT INTO notes (text) VALUES (?)", (text,))
        self.shared.execute(
            "INSERT INTO test_shared_notes (owner, text) VALUES (:owner, :text)", owner=self.name, text=text
        )

    @rpc
    def add(self, text: str, fail: bool = False) -> int:
        self._note(text)
        if fail:
            raise RuntimeError("failed after writing")
        return len(self.local())

    @rpc
    def add_tolerating_a_duplicate(self, text: str) -> str:
        """A shared statement that fails and is caught undoes only itself."""
        self._note(text)
        try:
            self.shared.execute("INSERT INTO test_shared_notes (owner, text) VALUES (:o, :t)", o=self.name, t=text)
        except sa.exc.IntegrityError:
            self._note(text + " (again)")
        return "ok"

    @rpc
    def write_through_query(self, text: str) -> list:
        return self.shared.query("INSERT INTO test_shared_notes (owner, text) VALUES (:o, :t)", o=self.name, t=text)

    @rpc
    def local(self) -> list[str]:
        return [r[0] for r in self.sql.execute("SELECT text FROM notes ORDER BY text")]

    @rpc
    def shared_notes(self) -> list[str]:
        rows = self.shared.query("SELECT text FROM test_shared_notes WHERE owner = :o ORDER BY text", o=self.name)
        return [r["text"] for r in rows]

    @rpc
    def started_with(self) -> list[str]:
        return self.shared_at_start


class Hazard(DurableObject):
    """Misbehaving methods: they spin, run endless SQL, block inside C, or kill their worker."""

    migrations = ["CREATE TABLE marks (note TEXT)"]

    @rpc
    def mark(self, note: str) -> int:
        self.sql.execute("INSERT INTO marks VALUES (?)", (note,))
        return self.sql.execute("SELECT count(*) FROM marks").fetchone()[0]

    @rpc
    def spin(self) -> None:
        self.sql.execute("INSERT INTO marks VALUES ('before spinning')")
        while True:
            pass

    @rpc
    def spin_catching_everything(self) -> str:
        try:
            while True:
                pass
        except Exception:  # the interrupt is not an Exception: this does not catch it
            return "caught"

    @rpc
    def swallow_the_interrupt_once(self) -> None:
        try:
            while True:
                pass
        except BaseException:  # noqa: B036 (it is the point: the interrupt comes again)
            pass
        while True:
            pass

    @rpc
    def endless_sql(self) -> int:
        self.sql.execute("INSERT INTO marks VALUES ('before the query')")
        query = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
        return self.sql.execute(query).fetchone()[0]

    @rpc
    def block_in_c(self, seconds: float) -> None:
        time.sleep(seconds)  # C code: no interrupt reaches it until it returns

    @rpc
    def kill_worker(self) -> None:
        os.kill(os.getpid(), signal.SIGKILL)


class Room(DurableObject):
    """WebSockets: a chat room with tags, attachments, broadcast, a refusal and a failing handler."""

    migrations = ["CREATE TABLE messages (id INTEGER PRIMARY KEY, author TEXT NOT NULL, body TEXT NOT NULL)"]

    def web_socket_connect(self, ws, request) -> None:
        user = request.query.get("user") or "anon"
        if user == "mallory":
            raise UserError("mallory may not join", status=403, code="banned")
        tags = ["user:" + user] + [f"extra{i}" for i in range(int(request.query.get("tags") or 0))]
        pad = "x" * int(request.query.get("pad") or 0)  # an attachment past 16 KiB is refused
        ws.accept(tags=tags, attachment={"user": user, "seen": 0, "query": sorted(request.query), "pad": pad})
        if request.query.get("greet"):
            ws.send(f"welcome {user}")

    def web_socket_message(self, ws, message) -> None:
        if isinstance(message, bytes):
            ws.send(message[::-1])  # binary: echoed reversed
            return
        author = ws.attachment["user"]
        self.sql.execute("INSERT INTO messages (author, body) VALUES (?, ?)", (author, message))
        if message.startswith("fail"):
            for other in self.websockets.all():
                other.send(f"never sent: {message}")
            raise RuntimeError("a failing handler sends nothing")
        if message.startswith("count"):
            ws.attachment = {**ws.attachment, "seen": ws.attachment["seen"] + 1}
            ws.send(f"seen {ws.attachment['seen']}")
            return
        if message.startswith("to "):  # "to <user> <text>": to one user's sockets, by tag
            _, user, text = message.split(" ", 2)
            for other in self.websockets.all(tag="user:" + user):
                other.send(f"{author} whispers: {text}")
            return
        if message == "bye":
            ws.close(4000, "bye")
            return
        if message == "big":
            ws.send("x" * (1024 * 1024 + 1))
            return
        if message.startswith("flood "):  # "flood <n>": n messages of 512 KiB to this socket
            for i in range(int(message.split()[1])):
                ws.send(f"{i:08d}" + "y" * (512 * 1024))
            return
        for other in self.websockets.all():
            other.send(f"{author}: {message}")

    def web_socket_close(self, ws, code, reason) -> None:
        self.sql.execute(
            "INSERT INTO messages (author, body) VALUES (?, ?)", (ws.attachment["user"], f"closed {code} {reason}")
        )

    def web_socket_error(self, ws, error) -> None:
        self.sql.execute("INSERT INTO messages (author, body) VALUES (?, ?)", (ws.attachment["user"], f"error {error}"))

    @rpc
    def announce(self, text: str) -> int:
        for s in self.websockets.all():
            s.send(text)
        return self.websockets.count()

    @rpc
    def sockets(self, tag: str | None = None) -> list[dict]:
        return [{"id": s.id, "tags": s.tags, "attachment": s.attachment} for s in self.websockets.all(tag=tag)]

    @rpc
    def log(self) -> list[str]:
        return [f"{a}: {b}" for a, b in self.sql.execute("SELECT author, body FROM messages ORDER BY id")]

    @rpc
    def auto(self, request: str, response: str) -> None:
        self.websockets.set_auto_response(request, response)

    @rpc
    def ring(self, at_ms: int) -> None:
        self.storage.set_alarm(at_ms)

    def alarm(self, info) -> None:  # alarms send too
        for s in self.websockets.all():
            s.send(f"alarm at {info.scheduled_ms}")

    @rpc
    def pid(self) -> int:
        return os.getpid()
