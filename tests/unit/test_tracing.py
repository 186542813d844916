"""Traces' plumbing: when they are on, what a call carries, and solo without the otel extra.

The spans themselves, across API, mailbox and objects, are in tests/contract/test_traces.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from solo.cli.tracing import configure_tracing, wanted_exporters
from solo.objects.calls import Call
from solo.objects.errors import InvalidRow
from solo.objects.naming import object_id
from solo.objects.state.image_rows import parse_sent_call
from solo.objects.tracing import OFF, is_traceparent

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, []),
        ({"OTEL_TRACES_EXPORTER": "none"}, []),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": " otlp , console "}, ["otlp", "console"]),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, []),
    ],
)
def test_traces_are_on_only_when_otel_traces_exporter_names_an_exporter(environ, wanted):
    assert wanted_exporters(environ) == wanted


def test_without_otel_traces_exporter_no_tracer_provider_is_installed():
    assert configure_tracing({}) is False


def test_an_untraced_call_is_written_as_before_traces_and_a_traced_one_keeps_its_context():
    call = Call("c1", "0" * 32, "Counter", "a", "increment", {})
    assert "trace" not in json.loads(call.to_json())
    traced = Call("c1", "0" * 32, "Counter", "a", "increment", {}, trace=TRACEPARENT)
    assert Call.from_json(traced.to_json()).trace == TRACEPARENT


def test_tracing_off_makes_no_spans_and_carries_no_context():
    assert not OFF.on and OFF.current() == ""
    call = Call("c1", "0" * 32, "Counter", "a", "increment", {}, trace=TRACEPARENT)
    with OFF.run(call, "increment", epoch=1) as span, OFF.ship([call.trace]) as shipped:
        assert span is None and shipped is None


@pytest.mark.parametrize("trace", [TRACEPARENT.upper(), "00-abc-def-01", 7, TRACEPARENT + "x"])
def test_a_sent_call_from_a_file_with_a_trace_solo_does_not_write_is_refused(trace):
    assert not is_traceparent(trace)
    row = {
        "call_id": "o" + "1" * 31,
        "object_id": object_id("ns", "Counter", "b"),
        "class_name": "Counter",
        "object_name": "b",
        "method": "increment",
        "args": {},
    }
    assert parse_sent_call(json.dumps({**row, "trace": TRACEPARENT}), "ns").trace == TRACEPARENT
    with pytest.raises(InvalidRow, match="traceparent"):
        parse_sent_call(json.dumps({**row, "trace": trace}), "ns")


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **env},
    )


def test_without_the_otel_extra_solo_runs_untraced_and_says_why():
    # Given a process in which opentelemetry cannot be imported
    done = run_python(
        """
        import sys
        sys.modules["opentelemetry"] = None  # import opentelemetry... raises ImportError
        from solo.cli.tracing import configure_tracing
        from solo.objects.tracing import process_tracing
        from solo.objects.calls import Call
        assert configure_tracing({"OTEL_TRACES_EXPORTER": "console"}) is False
        tracing = process_tracing()
        assert not tracing.on and tracing.current() == ""
        with tracing.run(Call("c1", "0" * 32, "Counter", "a", "increment", {}), "increment", epoch=1) as span:
            assert span is None
        print("untraced")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "untraced"


def test_otel_traces_exporter_console_installs_a_provider_that_exports_solos_spans():
    done = run_python(
        """
        from opentelemetry import trace
        from solo.cli.tracing import configure_tracing
        from solo.objects.calls import Call
        from solo.objects.tracing import process_tracing
        import os
        assert configure_tracing(os.environ) is True
        tracing = process_tracing()
        with tracing.run(Call("c1", "0" * 32, "Counter", "a", "increment", {}), "increment", epoch=3):
            pass
        trace.get_tracer_provider().shutdown()
        """,
        OTEL_TRACES_EXPORTER="console",
    )
    assert done.returncode == 0, done.stderr
    span = json.loads(done.stdout)
    assert span["name"] == "solo.run Counter.increment"
    assert span["attributes"]["solo.epoch"] == 3 and span["attributes"]["solo.call_id"] == "c1"
    assert span["resource"]["attributes"]["service.name"] == "solo"
