"""Trail cameras: one CameraPoller object per camera, polled every hour.

A poll reads the camera's feed through the small ``CameraFeed`` interface and
stores the pictures it has not seen; clients may also push pictures with
``ingest``. The object runs one call at a time and keys every picture by its
feed id and its content hash, so a picture sent twice, even by twenty clients
at once, is stored once; a retried request with the same ``Idempotency-Key``
gets the first answer back.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from solo import DurableObject, UserError, rpc

MAX_IMAGE_BYTES = 512 * 1024
FIRST_POLL_LOOKBACK_MS = 3_600_000  # a new camera's first poll fetches the last hour


@dataclass(frozen=True)
class FeedImage:
    image_id: str
    taken_at_ms: int
    content: bytes


class FeedError(Exception):
    """Raised by a feed that cannot be read now; the poll records it and tries again next hour."""


class CameraFeed(Protocol):
    def images_between(self, since_ms: int, until_ms: int) -> list[FeedImage]:
        """Pictures taken after `since_ms` and at or before `until_ms`, oldest first."""
        ...


class SimulatedFeed:
    """A camera without a network: a picture every `interval_s`, its bytes derived from camera and time."""

    def __init__(self, camera: str, interval_s: int = 900, offline: bool = False) -> None:
        if not isinstance(interval_s, int) or isinstance(interval_s, bool) or not 60 <= interval_s <= 86_400:
            raise ValueError("interval_s must be an integer from 60 to 86400")
        if not isinstance(offline, bool):
            raise ValueError("offline must be true or false")
        self.camera = camera
        self.interval_ms = interval_s * 1000
        self.offline = offline

    def images_between(self, since_ms: int, until_ms: int) -> list[FeedImage]:
        if self.offline:
            raise FeedError(f"camera {self.camera} does not answer")
        first = (since_ms // self.interval_ms + 1) * self.interval_ms
        return [
            FeedImage(
                image_id=f"{self.camera}-{taken_at_ms}",
                taken_at_ms=taken_at_ms,
                content=hashlib.sha256(f"{self.camera}@{taken_at_ms}".encode()).digest() * 32,
            )
            for taken_at_ms in range(first, until_ms + 1, self.interval_ms)
        ]


# Feed kinds a camera may be configured with; a real deployment adds its vendors' feeds here.
FEEDS: dict[str, Callable[..., CameraFeed]] = {"simulated": SimulatedFeed}


class CameraPoller(DurableObject):
    """One trail camera: hourly polls of its feed, deduplicated ingest, the last poll's outcome."""

    migrations = [
        """
        CREATE TABLE camera (
            id INTEGER PRIMARY KEY CHECK (id = 0),
            feed TEXT NOT NULL,
            settings TEXT NOT NULL,
            configured_ms INTEGER NOT NULL,
            last_poll_ok_ms INTEGER,
            last_poll_attempt_ms INTEGER,
            last_error TEXT
        );
        CREATE TABLE images (
            image_id TEXT PRIMARY KEY,
            content_key TEXT NOT NULL UNIQUE,
            taken_at_ms INTEGER NOT NULL,
            size_bytes INTEGER,
            url TEXT,
            content BLOB,
            source TEXT NOT NULL CHECK (source IN ('feed', 'ingest')),
            ingested_ms INTEGER NOT NULL
        );
        CREATE INDEX images_by_time ON images (taken_at_ms DESC);
        """
    ]

    def on_start(self) -> None:
        self.feed: CameraFeed | None = None  # built from the stored configuration when first needed

    @rpc
    def configure(self, feed: str = "simulated", settings: dict[str, Any] | None = None) -> dict[str, Any]:
        """Choose the camera's feed (see FEEDS) and its settings; starts the hourly poll."""
        settings = settings or {}
        self.feed = _build_feed(feed, self.name, settings)
        self.sql.execute(
            "INSERT INTO camera (id, feed, settings, configured_ms) VALUES (0, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET feed = excluded.feed, settings = excluded.settings,"
            " configured_ms = excluded.configured_ms",
            (feed, json.dumps(settings), self.ctx.now_ms()),
        )
        self.schedule("hourly-poll", "poll", cron="0 * * * *")
        return self.status()

    @rpc
    def ingest(
        self, image_id: str, taken_at: str | int, bytes_b64: str | None = None, url: str | None = None
    ) -> dict[str, Any]:
        """Store a picture given as base64 bytes or as a URL (kept as a reference, not fetched).

        `taken_at` is ISO 8601 (naive means UTC) or epoch ms. Answers "stored", or
        "duplicate" with the id already stored when the id or the content is known."""
        if not 1 <= len(image_id) <= 200:
            raise UserError("image_id must have 1 to 200 characters", code="invalid_image")
        if (bytes_b64 is None) == (url is None):
            raise UserError("give exactly one of bytes_b64 and url", code="invalid_image")
        if url is not None:
            if not url.startswith(("https://", "http://")) or len(url) > 2000:
                raise UserError("url must be an http(s) URL of at most 2000 characters", code="invalid_image")
            return self._store(image_id, _parse_time(taken_at), url=url, source="ingest")
        content = _decode_image(bytes_b64)
        return self._store(image_id, _parse_time(taken_at), content=content, source="ingest")

    @rpc
    def poll_now(self) -> dict[str, Any]:
        """Poll the feed now, as the hourly schedule does; the outcome is also kept for status()."""
        return self.poll()

    def poll(self) -> dict[str, Any]:
        """Fetch the pictures taken since the last successful poll and store the new ones."""
        feed = self._feed()
        now_ms = self.ctx.now_ms()
        since_ms = self._camera()["last_poll_ok_ms"] or now_ms - FIRST_POLL_LOOKBACK_MS
        try:
            pictures = feed.images_between(since_ms, now_ms)
        except FeedError as exc:
            # Kept, not raised: raising would roll the record of the failure back.
            self.sql.execute(
                "UPDATE camera SET last_poll_attempt_ms = ?, last_error = ? WHERE id = 0", (now_ms, str(exc))
            )
            return {"ok": False, "error": str(exc), "stored": 0, "duplicates": 0}
        outcomes = [
            self._store(p.image_id, p.taken_at_ms, content=p.content, source="feed")["status"] for p in pictures
        ]
        self.sql.execute(
            "UPDATE camera SET last_poll_ok_ms = ?, last_poll_attempt_ms = ?, last_error = NULL WHERE id = 0",
            (now_ms, now_ms),
        )
        return {
            "ok": True,
            "error": None,
            "stored": outcomes.count("stored"),
            "duplicates": outcomes.count("duplicate"),
        }

    @rpc
    def status(self) -> dict[str, Any]:
        """Configuration, last successful poll, last error, picture count and the next poll time (epoch ms)."""
        camera = self._camera(required=False)
        schedule = next((s for s in self.schedules() if s["name"] == "hourly-poll"), None)
        return {
            "camera": self.name,
            "feed": camera and camera["feed"],
            "settings": camera and json.loads(camera["settings"]),
            "last_poll_ok_ms": camera and camera["last_poll_ok_ms"],
            "last_poll_attempt_ms": camera and camera["last_poll_attempt_ms"],
            "last_error": camera and camera["last_error"],
            "images": self.sql.execute("SELECT count(*) FROM images").fetchone()[0],
            "next_poll_ms": schedule and schedule["next_ms"],
        }

    @rpc
    def images(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest pictures first (metadata only)."""
        if not 1 <= limit <= 500:
            raise UserError("limit must be from 1 to 500", code="invalid_limit")
        rows = self.sql.execute(
            "SELECT image_id, content_key, taken_at_ms, size_bytes, url, source, ingested_ms"
            " FROM images ORDER BY taken_at_ms DESC, image_id LIMIT ?",
            (limit,),
        )
        return [dict(row) for row in rows]

    # -- helpers ---------------------------------------------------------------

    def _store(
        self, image_id: str, taken_at_ms: int, *, source: str, content: bytes | None = None, url: str | None = None
    ) -> dict[str, Any]:
        content_key = "sha256:" + hashlib.sha256(content).hexdigest() if content is not None else "url:" + str(url)
        # Calls run one at a time, so nothing can slip in between this check and the insert.
        known = self.sql.execute(
            "SELECT image_id FROM images WHERE image_id = ? OR content_key = ?", (image_id, content_key)
        ).fetchone()
        if known is not None:
            return {"status": "duplicate", "image_id": known["image_id"], "content_key": content_key}
        self.sql.execute(
            "INSERT INTO images (image_id, content_key, taken_at_ms, size_bytes, url, content, source, ingested_ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                image_id,
                content_key,
                taken_at_ms,
                None if content is None else len(content),
                url,
                content,
                source,
                self.ctx.now_ms(),
            ),
        )
        return {"status": "stored", "image_id": image_id, "content_key": content_key}

    def _camera(self, required: bool = True) -> Any:
        row = self.sql.execute("SELECT * FROM camera WHERE id = 0").fetchone()
        if row is None and required:
            raise UserError("configure the camera first", status=409, code="not_configured")
        return row

    def _feed(self) -> CameraFeed:
        if self.feed is None:
            camera = self._camera()
            self.feed = _build_feed(camera["feed"], self.name, json.loads(camera["settings"]))
        return self.feed


def _build_feed(kind: str, camera: str, settings: dict[str, Any]) -> CameraFeed:
    factory = FEEDS.get(kind)
    if factory is None:
        raise UserError(f"unknown feed {kind!r}; known: {', '.join(sorted(FEEDS))}", code="invalid_feed")
    try:
        return factory(camera, **settings)
    except (TypeError, ValueError) as exc:
        raise UserError(f"settings for a {kind} feed: {exc}", code="invalid_feed") from None


def _parse_time(value: str | int) -> int:
    if isinstance(value, int):
        return value
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise UserError(f"taken_at {value!r} is not ISO 8601", code="invalid_image") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def _decode_image(bytes_b64: str) -> bytes:
    try:
        content = base64.b64decode(bytes_b64, validate=True)
    except ValueError:  # binascii.Error, and the ValueError of a text that is not ASCII
        raise UserError("bytes_b64 is not valid base64", code="invalid_image") from None
    if not 0 < len(content) <= MAX_IMAGE_BYTES:
        raise UserError(f"an image has 1 to {MAX_IMAGE_BYTES} bytes", code="invalid_image")
    return content
