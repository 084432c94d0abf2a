"""Spans: the app's tracer, one trace per file version, and client spans that carry no secret.

Only the OpenTelemetry *API* is used here: until :func:`shared.telemetry.configure` (or the
Functions worker) installs an SDK provider, every span is a non-recording no-op and costs
next to nothing. The API is imported by FastAPI already, so importing this module adds no
cold-start time in the worker.

A file version's trace outlives every invocation that touches it (intake, submitter, poller
run in different processes, minutes apart), so its context travels in the ledger: the W3C
``traceparent`` of the intake span is stored on the source row
(https://www.w3.org/TR/trace-context/#traceparent-header), and later stages start their
per-file spans as children of it (:func:`file_span`). A job serves many files, so its span
lives in a trace of its own and *links* to each file, the OpenTelemetry model for batches
(https://opentelemetry.io/docs/concepts/signals/traces/#span-links).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from functools import cache
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from opentelemetry.trace import (
    Link,
    SpanKind,
    Status,
    StatusCode,
    get_current_span,
    get_tracer,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.redact import REDACTED, redact_url

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer
    from opentelemetry.util.types import AttributeValue

#: The instrumentation scope of every span and metric the app records.
SCOPE = "speech-transcription"

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACEPARENT = "traceparent"
#: A path segment that names one resource (a GUID, or a long run with digits): it becomes
#: ``{id}`` in a URL template, keeping an ``:action`` suffix (``{id}:ping``).
_ID_SEGMENT = re.compile(
    r"^(?:.*(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|"
    r"(?=[^:]*\d)[^:]{16,}).*?)(?P<action>:[A-Za-z]+)?$",
    re.IGNORECASE,
)

Attributes = Mapping[str, "AttributeValue | None"]


@cache
def tracer() -> Tracer:
    """The app's tracer (a proxy until a provider is installed, then the provider's)."""
    return get_tracer(SCOPE)


def _clean(attributes: Attributes | None) -> dict[str, AttributeValue]:
    # None is not an attribute value: the SDK would drop it with a warning per span.
    return {k: v for k, v in (attributes or {}).items() if v is not None}


@contextmanager
def traced(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    context: Context | None = None,
    links: list[Link] | None = None,
    attributes: Attributes | None = None,
) -> Iterator[Span]:
    """A span, current while the block runs; an exception marks it failed and propagates.

    Only the exception's type is recorded (``error.type``, the status description), never its
    message or stack: a storage or HTTP error's text can quote a URL.
    """
    with tracer().start_as_current_span(
        name,
        context=context,
        kind=kind,
        links=links,
        attributes=_clean(attributes),
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            span.set_attribute("error.type", type(exc).__name__)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise


def client_span(name: str, attributes: Attributes | None = None) -> AbstractContextManager[Span]:
    """A ``CLIENT`` span around one call to another service (:func:`traced`)."""
    return traced(name, kind=SpanKind.CLIENT, attributes=attributes)


def storage_span(
    service: str, operation: str, *, resource: str | None, server: str | None
) -> AbstractContextManager[Span]:
    """A span for one Blob or Table Storage call: ``blob get_properties``, ``table query``.

    ``resource`` is the container or table (None for an account-wide call); blob names,
    keys and SAS stay out (a path is a file's business, and its own trace names it).
    """
    where = "storage.container" if service == "blob" else "storage.table"
    return client_span(
        f"{service} {operation}",
        {
            "az.namespace": "Microsoft.Storage",
            "storage.operation": operation,
            where: resource,
            "server.address": server,
        },
    )


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span; None when nothing is recorded."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get(_TRACEPARENT)


def context_of(trace_parent: str | None) -> Context | None:
    """The context a stored ``traceparent`` names; None when absent or malformed."""
    if not trace_parent:
        return None
    context = _PROPAGATOR.extract({_TRACEPARENT: trace_parent})
    if not get_current_span(context).get_span_context().is_valid:
        return None
    return context


@contextmanager
def file_span(
    name: str, trace_parent: str | None, attributes: Attributes | None = None
) -> Iterator[Span]:
    """A span in one file's own trace, linked both ways with the current (job) span.

    The file's trace gets a child of its stored ``traceparent`` that links to the job; the
    job's span gets a link to the file. Without a stored context (a row from before traces
    were kept, or nothing was sampled) the span is simply a child of the current one.
    """
    parent = context_of(trace_parent)
    if parent is None:
        with traced(name, attributes=attributes) as span:
            yield span
        return
    job = get_current_span()
    job_context = job.get_span_context()
    links = [Link(job_context)] if job_context.is_valid else None
    if job.is_recording():
        job.add_link(get_current_span(parent).get_span_context())
    with traced(name, context=parent, links=links, attributes=attributes) as span:
        yield span


def batch_span(
    name: str, trace_parents: list[str | None], attributes: Attributes | None = None
) -> AbstractContextManager[Span]:
    """A span for work done for several files at once (a job): linked to each file's trace.

    Work for a single file is part of that file's own trace instead, so a lone upload's
    trace shows everything done for it, the Speech requests of its job included.
    """
    if len(trace_parents) == 1 and (parent := context_of(trace_parents[0])) is not None:
        return traced(name, context=parent, attributes=attributes)
    links = [link for tp in trace_parents if (link := link_to(tp)) is not None]
    return traced(name, links=links, attributes=attributes)


def link_to(trace_parent: str | None) -> Link | None:
    """A link to the span a stored ``traceparent`` names (None when there is none)."""
    parent = context_of(trace_parent)
    return Link(get_current_span(parent).get_span_context()) if parent else None


def span_url(url: str) -> str:
    """``url`` fit for ``url.full``: :func:`redact_url`, then every redacted value dropped.

    OpenTelemetry's HTTP conventions ask for query values such as ``sig`` to be redacted
    (https://opentelemetry.io/docs/specs/semconv/http/http-spans/); a SAS query says
    nothing useful even redacted, so only the allow-listed parameters (``api-version``)
    remain.
    """
    parts = urlsplit(redact_url(url))
    if not parts.query:
        return urlunsplit(parts)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if v != REDACTED]
    return urlunsplit(parts._replace(query=urlencode(kept)))


def url_template(url: str) -> str:
    """The URL's path with resource ids as ``{id}``: a low-cardinality operation name.

    ``/speechtotext/transcriptions/0f8f.../files`` -> ``/speechtotext/transcriptions/{id}/files``
    (OpenTelemetry's ``url.template``). Host and query are left out.
    """
    segments = []
    for segment in urlsplit(url).path.split("/"):
        match = _ID_SEGMENT.match(segment) if segment else None
        segments.append("{id}" + (match["action"] or "") if match else segment)
    return "/".join(segments) or "/"
