"""Logs: failing user code is logged with its call, object, tenant and epoch; the JSON format; the access log."""

import io
import json
import logging
import sys
import threading
import uuid

import pytest

from solo import DurableObject, rpc
from solo.api.access_log import AccessLog, without_secrets
from solo.cli.logs import JsonFormatter, TextFormatter, configure_logging
from solo.cli.main import listening_url
from solo.objects.alarms import ALARM, FIRE_METHOD
from solo.objects.calls import Call
from solo.objects.errors import StartFailed
from solo.objects.naming import new_call_id, object_id
from solo.objects.runtime import log_fields
from solo.objects.runtime.instance import ObjectInstance
from solo.objects.settings import Settings
from solo.objects.state.keys import Principal
from solo.testing import ManualClock
from tests.objects import Alarmed, Fragile


def instance_of(cls, tmp_path, *, tenant: str = "default", epoch: int = 7, clock=None) -> ObjectInstance:
    name = uuid.uuid4().hex
    kwargs = {"clock_ms": clock} if clock is not None else {}
    return ObjectInstance(
        cls,
        object_id=object_id("test", cls.__name__, name, tenant),
        name=name,
        path=tmp_path / f"{name}.sqlite",
        epoch=epoch,
        tenant=tenant,
        **kwargs,
    )


def call(instance: ObjectInstance, method: str, **args) -> Call:
    return Call(new_call_id(), instance.object_id, instance.cls.__name__, instance.name, method, args)


def records_of(caplog, logger: str = "solo.objects.runtime.instance") -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger]


# -- failing user code ---------------------------------------------------------------------------


def test_a_method_that_raises_logs_its_traceback_with_call_id_object_tenant_and_epoch(tmp_path, caplog):
    instance = instance_of(Fragile, tmp_path, tenant="acme", epoch=7)
    instance.hydrate()
    try:
        failing = call(instance, "add_then_fail", text="lost")
        with caplog.at_level(logging.ERROR):
            (outcome,) = instance.run_batch([failing]).outcomes
    finally:
        instance.close()
    assert not outcome.ok
    (record,) = [r for r in records_of(caplog) if r.levelno == logging.ERROR]
    message = record.getMessage()
    assert f"Fragile/{instance.name}.add_then_fail raised ValueError" in message
    assert f"call {failing.call_id}" in message and "tenant acme" in message and "epoch 7" in message
    assert record.exc_info is not None
    assert "add_then_fail" in logging.Formatter().formatException(record.exc_info)


def test_an_alarm_handler_that_raises_logs_its_traceback(tmp_path, caplog):
    clock = ManualClock()
    instance = instance_of(Alarmed, tmp_path, clock=clock)
    instance.hydrate()
    try:
        (set_outcome,) = instance.run_batch([call(instance, "set_alarm", at_ms=clock() + 1000, fail_times=1)]).outcomes
        assert set_outcome.ok
        clock.advance(1000)
        fire = Call(
            new_call_id(), instance.object_id, "Alarmed", instance.name, FIRE_METHOD, {"name": ALARM, "due_ms": clock()}
        )
        with caplog.at_level(logging.ERROR):
            instance.run_batch([fire])
    finally:
        instance.close()
    (record,) = [r for r in records_of(caplog) if r.levelno == logging.ERROR]
    assert f"Alarmed/{instance.name}.alarm raised RuntimeError" in record.getMessage()
    assert f"call {fire.call_id}" in record.getMessage() and record.exc_info is not None


def test_a_failing_on_start_logs_its_traceback_with_the_call_that_brought_the_object_up(tmp_path, caplog):
    def on_start(self):
        raise KeyError("no such thing")

    name = f"BadStart_{uuid.uuid4().hex[:8]}"
    cls = type(name, (DurableObject,), {"__module__": __name__, "__qualname__": name, "on_start": on_start})
    instance = instance_of(cls, tmp_path, tenant="acme", epoch=3)
    with caplog.at_level(logging.ERROR), log_fields.bound(call_id="c0ffee"), pytest.raises(StartFailed):
        instance.hydrate()
    (record,) = [r for r in records_of(caplog) if r.levelno == logging.ERROR]
    assert record.getMessage() == f"{name}/{instance.name}.on_start() failed (call c0ffee, tenant acme, epoch 3)"
    assert record.exc_info is not None


def test_log_lines_written_while_a_call_runs_carry_its_fields(tmp_path):
    seen: list[dict] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(dict(log_fields.fields_of(record)))

    def speak(self) -> None:
        logging.getLogger("user.code").warning("hello from the method")

    name = f"Speaker_{uuid.uuid4().hex[:8]}"
    cls = type(name, (DurableObject,), {"__module__": __name__, "__qualname__": name, "speak": rpc(speak)})
    handler = Keep()
    handler.addFilter(log_fields.FieldsFilter())
    logging.getLogger("user.code").addHandler(handler)
    instance = instance_of(cls, tmp_path, tenant="acme", epoch=2)
    instance.hydrate()
    try:
        speaking = call(instance, "speak")
        instance.run_batch([speaking])
    finally:
        instance.close()
        logging.getLogger("user.code").removeHandler(handler)
    bound_then = {"object": f"{name}/{instance.name}", "tenant": "acme", "epoch": 2}
    assert seen == [{**bound_then, "call_id": speaking.call_id, "method": "speak"}]


# -- formats -------------------------------------------------------------------------------------


def emit(formatter: logging.Formatter, message: str, *args, exc: BaseException | None = None, **fields) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(log_fields.FieldsFilter())
    logger = logging.getLogger(f"test.logs.{uuid.uuid4().hex[:6]}")
    logger.propagate = False
    logger.addHandler(handler)
    with log_fields.bound(**fields):
        logger.error(message, *args, exc_info=exc)
    return stream.getvalue()


def test_json_lines_parse_and_carry_timestamp_level_logger_message_and_the_calls_fields():
    try:
        raise ValueError("deep\ninside")
    except ValueError as exc:
        caught = exc
    output = emit(JsonFormatter(), "%s raised, line\nbreak", "Counter/a", exc=caught, call_id="abc", object="Counter/a")
    (line,) = output.splitlines()  # one record, one line, whatever newlines it holds
    entry = json.loads(line)
    assert entry["level"] == "ERROR" and entry["logger"].startswith("test.logs.")
    assert entry["message"] == "Counter/a raised, line\nbreak"
    assert entry["call_id"] == "abc" and entry["object"] == "Counter/a"
    assert "ValueError: deep" in entry["exception"]
    assert entry["timestamp"].endswith("+00:00")


def test_a_json_line_without_a_call_has_no_call_fields():
    entry = json.loads(emit(JsonFormatter(), "plain"))
    assert set(entry) == {"timestamp", "level", "logger", "message"}


def test_plain_text_shows_the_calls_fields_as_a_suffix():
    line = emit(TextFormatter(), "went wrong", call_id="abc", object="Counter/a", tenant="acme").strip()
    assert line.endswith("went wrong [call_id=abc object=Counter/a tenant=acme]")
    assert emit(TextFormatter(), "nothing bound").strip().endswith("nothing bound")


@pytest.fixture
def configured():
    """configure(settings) -> the stream it logs to; the process's logging, hooks and warnings restored after."""
    root = logging.getLogger()
    before = (list(root.handlers), root.level, sys.excepthook, threading.excepthook)

    def configure(settings: Settings) -> io.StringIO:
        stream = io.StringIO()
        assert configure_logging(settings, stream, force=True) is not None
        return stream

    yield configure
    root.handlers[:] = before[0]
    root.setLevel(before[1])
    sys.excepthook, threading.excepthook = before[2], before[3]
    logging.captureWarnings(False)


def test_configure_logging_uses_the_format_the_settings_name(configured):
    stream = configured(Settings.from_mapping({"log_format": "json", "log_level": "INFO"}))
    logging.getLogger("solo.test").info("configured")
    assert json.loads(stream.getvalue())["message"] == "configured"


def test_with_json_logs_warnings_and_uncaught_exceptions_are_json_lines_too(configured):
    import warnings

    stream = configured(Settings.from_mapping({"log_format": "json", "log_level": "INFO"}))
    warnings.warn("deprecated thing", DeprecationWarning, stacklevel=1)
    try:
        raise RuntimeError("nobody caught me")
    except RuntimeError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    warned, uncaught = (json.loads(line) for line in stream.getvalue().splitlines())
    assert "deprecated thing" in warned["message"]
    assert uncaught["message"] == "uncaught RuntimeError" and "nobody caught me" in uncaught["exception"]


def test_logging_is_left_alone_when_the_process_has_configured_it_already():
    assert logging.getLogger().handlers  # pytest's
    assert configure_logging(Settings.from_mapping({"log_format": "json"})) is None


def test_an_unknown_log_format_is_refused():
    from solo.objects.errors import InvalidSettings

    with pytest.raises(InvalidSettings, match="SOLO_LOG_FORMAT"):
        Settings.from_env({"SOLO_LOG_FORMAT": "xml"})


def test_solo_api_names_the_address_it_listens_on():
    assert listening_url(("127.0.0.1", 8123)) == "http://127.0.0.1:8123"
    assert listening_url(("::1", 8123, 0, 0)) == "http://[::1]:8123"


# -- the access log --------------------------------------------------------------------------------


def test_the_access_log_leaves_token_parameters_out_of_the_query():
    assert without_secrets(b"a=1&token=solo_x_y&b=2") == "a=1&b=2"
    assert without_secrets(b"to%6Ben=solo_x_y") == ""  # spelled with an escape, still a token
    assert without_secrets(b"") == ""


async def _answer(scope, receive, send):
    scope["state"]["principal"] = Principal("k123", "acme", "call")  # as AuthMiddleware records it
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def test_the_access_log_writes_one_line_per_request_with_status_and_key_id_but_no_secret(caplog):
    import asyncio

    token = "solo_0123456789abcdef_secretsecretsecret"
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/objects/Counter/a/ws",
        "query_string": f"token={token}&x=1".encode(),
        "headers": [(b"authorization", f"Bearer {token}".encode())],
        "state": {},
    }

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(_message):
        pass

    with caplog.at_level(logging.INFO, logger="solo.api.access"):
        asyncio.run(AccessLog(_answer)(scope, receive, send))
    (record,) = [r for r in caplog.records if r.name == "solo.api.access"]
    line = record.getMessage()
    assert line.startswith("POST /v1/objects/Counter/a/ws?x=1 201 ") and "key=k123 tenant=acme" in line
    assert "secret" not in line and "secret" not in json.dumps(log_fields.fields_of(record))
    assert log_fields.fields_of(record)["status"] == 201


def test_migrating_logs_the_migrations_it_applies_and_none_of_alembics_start_up_lines(configured, tmp_path):
    from solo.objects.state.migrate import upgrade

    stream = configured(Settings.from_mapping({"log_level": "INFO"}))
    upgrade(f"sqlite:///{tmp_path / 'shared.db'}")
    lines = stream.getvalue().splitlines()
    assert any("Running upgrade  -> 0001" in line for line in lines), lines
    assert all("Running upgrade" in line for line in lines), lines  # no plugins, no "Context impl SQLiteImpl."
