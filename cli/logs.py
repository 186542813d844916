"""How every `solo` process writes its log: plain text (the default) or one JSON object per line.

``SOLO_LOG_FORMAT=json`` is for log collectors: each record is one line holding
``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, the fields of the
object and call it was written for (objects/runtime/log_fields.py: ``object``, ``tenant``,
``epoch``, ``call_id``, ``method``), and ``exception`` with the traceback when there is
one. Plain text shows the same fields as a ``[key=value ...]`` suffix. A small formatter
of our own rather than a dependency: the format is these few keys.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import threading
from types import TracebackType
from typing import TextIO

from solo.objects.runtime.log_fields import FieldsFilter, fields_of
from solo.objects.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        line = super().formatMessage(record)
        fields = fields_of(record)
        if not fields:
            return line
        return f"{line} [{' '.join(f'{k}={v}' for k, v in fields.items())}]"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "timestamp": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **fields_of(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: a field or argument of any type still makes a line, never an error
        return json.dumps(entry, ensure_ascii=False, default=str)


def formatter_for(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure_logging(
    settings: Settings, stream: TextIO | None = None, *, force: bool = False
) -> logging.Handler | None:
    """One handler on the root logger, to stderr, in the format and at the level the settings say.

    As logging.basicConfig, nothing is done if the root logger has handlers already (a host
    process's, or pytest's when a test runs `solo`'s main) unless `force`. Warnings and
    uncaught exceptions go through the handler too, so that a JSON log stays one object a line.
    """
    root = logging.getLogger()
    if root.handlers and not force:
        return None
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter_for(settings.log_format))
    handler.addFilter(FieldsFilter())
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise in a CLI
    # Alembic names its plugins and its SQL dialect on every run: only the migrations it applies are news.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.migration").addFilter(_only_applied_migrations)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    return handler


def _only_applied_migrations(record: logging.LogRecord) -> bool:
    return record.levelno > logging.INFO or record.getMessage().startswith("Running ")


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("solo").critical("uncaught %s", kind.__name__, exc_info=(kind, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None:
        return
    thread = args.thread.name if args.thread is not None else "a thread"
    exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
    logging.getLogger("solo").error("uncaught %s in %s", args.exc_type.__name__, thread, exc_info=exc_info)
