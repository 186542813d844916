"""OpenTelemetry spans of calls, and the W3C trace context a call carries (the optional extra solo[otel]).

A call carries its trace as a W3C ``traceparent`` (``Call.trace``): the API takes it from the
request's header and sets it to its own server span; an object's calls to others and its
``.send``s carry the span of the call that made them; an alarm keeps the context of the call
that set it in the object's own file (``_solo_alarm_traces``). So one request's spans form one
trace across the API, the mailbox and every object it reaches, on any process.

Spans (attributes ``solo.class``, ``solo.method``, ``solo.tenant``, ``solo.call_id``,
``solo.epoch``; never arguments, results or keys):

  POST /v1/objects/{class_name}/{name}/{method}   the API's server span
  solo.queued Class.method    from enqueue to the claim of its batch (its start is the call's enqueued_ms)
  solo.hydrate Class          the activation's takeover, restore, migrations and on_start()
  solo.run Class.method       the user's method (or alarm handler, or socket event)
  solo.call Class.method      an object waiting on another's call (client side)
  solo.ship                   the shipment of a batch's commit (the output gate), with links to its other calls

An alarm's run starts a trace of its own with a span *link* to the call that set it: it fires
later, maybe many times (a schedule) and with retries, which would keep one trace open for
ever if it were a child.

`Tracing(None)` (OFF) is what a process without a tracer provider gets: every hook is one
attribute check, and opentelemetry is not even imported (it is an optional extra).
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from solo.objects.calls import Call, Outcome

if TYPE_CHECKING:
    from opentelemetry import trace as otel
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
else:
    otel = None  # imported with the first tracer: a process that does not trace never imports opentelemetry


def _import_opentelemetry() -> TraceContextTextMapPropagator:
    global otel
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    otel = trace
    return TraceContextTextMapPropagator()


TRACER_NAME = "solo"
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
_NOTHING: contextlib.nullcontext[None] = contextlib.nullcontext()


def is_traceparent(value: object) -> bool:
    """A W3C traceparent as solo writes one (what a row from outside must look like to be used)."""
    return isinstance(value, str) and _TRACEPARENT.match(value) is not None


class Tracing:
    """The spans of one process, made by an OpenTelemetry tracer; without one (OFF), none."""

    __slots__ = ("_tracer", "_propagator")

    def __init__(self, tracer: Tracer | None = None) -> None:
        self._tracer = tracer
        self._propagator = _import_opentelemetry() if tracer is not None else None

    @property
    def on(self) -> bool:
        return self._tracer is not None

    # -- the context a call carries ------------------------------------------------

    def current(self) -> str:
        """The traceparent of the span running now ("" if none): what an outgoing call carries."""
        if self._tracer is None:
            return ""
        context = otel.get_current_span().get_span_context()
        if not context.is_valid:
            return ""
        return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"

    def _context(self, headers: Mapping[str, str]) -> Context | None:
        """The remote parent in W3C headers (None if there is none or it is invalid: a new trace)."""
        if not headers.get("traceparent"):
            return None
        assert self._propagator is not None
        return self._propagator.extract(dict(headers))

    def _parent(self, traceparent: str) -> Context | None:
        """The context a call carries, as a remote parent. Read directly: solo wrote it (is_traceparent)."""
        if not traceparent:
            return None
        try:
            span_context = otel.SpanContext(
                trace_id=int(traceparent[3:35], 16),
                span_id=int(traceparent[36:52], 16),
                is_remote=True,
                trace_flags=otel.TraceFlags(int(traceparent[53:55], 16)),
            )
        except ValueError:  # not as solo writes it (a record from an older or foreign writer): untraced
            return None
        return otel.set_span_in_context(otel.NonRecordingSpan(span_context)) if span_context.is_valid else None

    def _link(self, traceparent: str) -> list[otel.Link]:
        context = self._parent(traceparent)
        if context is None:
            return []
        span_context = otel.get_current_span(context).get_span_context()
        return [otel.Link(span_context)] if span_context.is_valid else []

    # -- spans ---------------------------------------------------------------------

    def server(
        self, name: str, headers: Mapping[str, str], attributes: Mapping[str, Any]
    ) -> contextlib.AbstractContextManager[Span | None]:
        """The API's span of a request: its parent is the request's traceparent, if it has a valid one."""
        if self._tracer is None:
            return _NOTHING
        carrier = {k: v for k in ("traceparent", "tracestate") if (v := headers.get(k))}
        return self._tracer.start_as_current_span(  # the caller sets the status: a 4xx is not the server's fault
            name,
            context=self._context(carrier),
            kind=otel.SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )

    def queued(self, calls: Sequence[Call], claimed_ms: int) -> None:
        """One span per traced call of a claimed batch: its time in the mailbox."""
        if self._tracer is None:
            return
        for call in calls:
            if not call.trace or not call.enqueued_ms:
                continue  # a call from no trace (an alarm's fire, a socket event) starts none here
            span = self._tracer.start_span(
                f"solo.queued {call.class_name}.{call.method}",
                context=self._parent(call.trace),
                kind=otel.SpanKind.CONSUMER,
                attributes=call_attributes(call),
                start_time=call.enqueued_ms * 1_000_000,
            )
            span.end(end_time=max(claimed_ms, call.enqueued_ms) * 1_000_000)

    def hydrate(self, call: Call) -> contextlib.AbstractContextManager[Span | None]:
        """The activation's hydrate, in the trace of the call that brought the object up."""
        if self._tracer is None:
            return _NOTHING
        return self._tracer.start_as_current_span(
            f"solo.hydrate {call.class_name}",
            context=self._parent(call.trace),
            attributes={"solo.class": call.class_name, "solo.tenant": call.tenant, "solo.call_id": call.call_id},
        )

    def annotate(self, **attributes: str | int) -> None:
        """Attributes learnt while the current span runs (the epoch, once taken), as solo.<name>."""
        if self._tracer is None:
            return
        span = otel.get_current_span()
        for key, value in attributes.items():
            span.set_attribute(f"solo.{key}", value)

    def run(
        self, call: Call, what: str, *, epoch: int, link: str = ""
    ) -> contextlib.AbstractContextManager[Span | None]:
        """A call's user code (`what`: the method, alarm handler or socket event) on its object.

        Its parent is the context the call carries; `link`, the context that set an alarm being fired.
        """
        if self._tracer is None:
            return _NOTHING
        return self._tracer.start_as_current_span(
            f"solo.run {call.class_name}.{what}",
            context=self._parent(call.trace),
            kind=otel.SpanKind.SERVER,
            attributes={**call_attributes(call), "solo.method": what, "solo.epoch": epoch},
            links=self._link(link),
        )

    def ended(self, span: Span | None, outcome: Outcome) -> None:
        """A call's span learns how it ended: a failure is an error status with its code."""
        if span is None or outcome.ok:
            return
        code = str((outcome.error or {}).get("code", "error"))
        span.set_attribute("solo.error", code)
        span.set_status(otel.Status(otel.StatusCode.ERROR, code))

    @staticmethod
    def failed(span: Span | None, description: str | None = None) -> None:
        """The span's work failed (an error status)."""
        if span is not None:
            span.set_status(otel.Status(otel.StatusCode.ERROR, description))

    def calling(self, class_name: str, method: str) -> contextlib.AbstractContextManager[Span | None]:
        """An object waiting on a call to another (the call it sends carries this span)."""
        if self._tracer is None:
            return _NOTHING
        return self._tracer.start_as_current_span(
            f"solo.call {class_name}.{method}",
            kind=otel.SpanKind.CLIENT,
            attributes={"solo.class": class_name, "solo.method": method},
        )

    def ship(self, traces: Sequence[str]) -> contextlib.AbstractContextManager[Span | None]:
        """The shipment of a commit: in the trace of the batch's first traced call, linked to the others.

        Without `traces`, a child of the current span (hydrate's shipment), or none at all.
        """
        if self._tracer is None:
            return _NOTHING
        traced = [t for t in traces if t]
        if not traced and not otel.get_current_span().get_span_context().is_valid:
            return _NOTHING  # a commit outside any traced work (the outbox's clean-up)
        links = [link for t in dict.fromkeys(traced[1:]) for link in self._link(t)]
        context = self._parent(traced[0]) if traced else None
        return self._tracer.start_as_current_span("solo.ship", context=context, links=links)


def call_attributes(call: Call) -> dict[str, Any]:
    return {
        "solo.class": call.class_name,
        "solo.method": call.method,
        "solo.tenant": call.tenant,
        "solo.call_id": call.call_id,
    }


OFF = Tracing()


def process_tracing() -> Tracing:
    """This process's tracing: on when a tracer provider was installed (cli/tracing.py, or by
    ``opentelemetry-instrument``), else OFF."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:  # never imported: nothing can have installed a provider
        return OFF
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return OFF
    return Tracing(provider.get_tracer(TRACER_NAME))
