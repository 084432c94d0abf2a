"""OpenTelemetry for the app: one trace per file version, client spans, pipeline metrics.

* :func:`configure` (``setup``) installs exporters once per worker process; the app context
  calls it when it is built, so the SDK is never imported by ``import function_app``.
* ``spans``: the tracer, :func:`file_span` (a span in a file's own trace, from the
  ``traceparent`` stored on its ledger row), :func:`storage_span` and :func:`client_span`
  for calls to other services, with URLs fit for a span (:func:`span_url`); ``http``:
  :func:`http_request_span`, one span per Speech request with its retries.
* ``metrics``: the meter and the app's four instruments.

Everything works, and records nothing, when no exporter is configured.
"""

from shared.telemetry.http import HttpAttempts, http_request_span
from shared.telemetry.metrics import (
    meter,
    record_audio_seconds,
    record_file_state,
    record_queue_wait,
    record_speech_request,
)
from shared.telemetry.setup import Exporters, configure
from shared.telemetry.spans import (
    batch_span,
    client_span,
    context_of,
    current_traceparent,
    file_span,
    link_to,
    span_url,
    storage_span,
    traced,
    tracer,
    url_template,
)

__all__ = [
    "Exporters",
    "HttpAttempts",
    "batch_span",
    "client_span",
    "configure",
    "context_of",
    "current_traceparent",
    "file_span",
    "http_request_span",
    "link_to",
    "meter",
    "record_audio_seconds",
    "record_file_state",
    "record_queue_wait",
    "record_speech_request",
    "span_url",
    "storage_span",
    "traced",
    "tracer",
    "url_template",
]
