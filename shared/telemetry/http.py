"""One span per outgoing HTTP request, retries included, and the request counter.

A request that is retried is one logical call: one ``CLIENT`` span named
``{method} {url.template}`` (OpenTelemetry's HTTP client span name,
https://opentelemetry.io/docs/specs/semconv/http/http-spans/), with the final status, the
number of resends and of 429s, and an event per retry. Every attempt is counted in the
``speech.requests`` metric, so throttling shows as the share of 429s.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from shared.telemetry.metrics import record_speech_request
from shared.telemetry.spans import client_span, span_url, url_template

if TYPE_CHECKING:
    from opentelemetry.trace import Span


@dataclass
class HttpAttempts:
    """What one request's attempts did, written onto its span as they happen."""

    span: Span
    method: str
    template: str
    sends: int = 0
    throttled: int = 0

    def sending(self, url: str) -> None:
        """An attempt goes to ``url`` (the full URL, query included; redacted here)."""
        self.sends += 1
        if self.sends == 1:
            self.span.set_attribute("url.full", span_url(url))
        else:
            self.span.set_attribute("http.request.resend_count", self.sends - 1)

    def answered(self, status: int) -> None:
        """The attempt got a response with ``status``."""
        record_speech_request(self.method, self.template, status=status)
        self.span.set_attribute("http.response.status_code", status)
        if status == 429:
            self.throttled += 1
            self.span.set_attribute("speech.throttled", self.throttled)

    def failed(self, error: BaseException) -> None:
        """The attempt got no response (a connection error, a timeout)."""
        record_speech_request(self.method, self.template, error=type(error).__name__)

    def retrying(self, reason: str, wait: float | None = None) -> None:
        """Another attempt follows, after ``wait`` seconds, because of ``reason``."""
        event: dict[str, str | float] = {"reason": reason}
        if wait is not None:
            event["wait_seconds"] = wait
        self.span.add_event("retry", event)


@contextmanager
def http_request_span(method: str, url: str) -> Iterator[HttpAttempts]:
    """The span of one request to ``url`` (without its query: that is in ``url.full``)."""
    template = url_template(url)
    parts = urlsplit(url)
    with client_span(
        f"{method} {template}",
        {
            "http.request.method": method,
            "url.template": template,
            "server.address": parts.hostname,
            "server.port": parts.port,
        },
    ) as span:
        yield HttpAttempts(span, method, template)
