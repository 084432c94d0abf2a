"""Choosing the exporters, once per worker process.

Which backend gets the app's spans and metrics is decided by the environment, as the
Functions host decides for its own telemetry in OpenTelemetry mode
(https://learn.microsoft.com/azure/azure-functions/opentelemetry-howto):

* a provider is already installed — the Functions Python worker configures the Azure Monitor
  distro itself when ``PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true`` (the deployed app),
  or a test installed one: it is used as it is, never configured twice;
* ``APPLICATIONINSIGHTS_CONNECTION_STRING`` -> Application Insights through
  ``configure_azure_monitor``, authenticated with Microsoft Entra ID as the app's managed
  identity: the component has local (key) authentication off
  (https://learn.microsoft.com/azure/azure-monitor/app/azure-ad-authentication);
* the standard ``OTEL_EXPORTER_OTLP_*`` / ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER``
  variables -> OTLP over HTTP/protobuf to any collector
  (https://opentelemetry.io/docs/languages/sdk-configuration/otlp-exporter/); both when both
  are set, as the host does;
* none of these, or ``OTEL_SDK_DISABLED=true`` -> nothing: the API's no-op stays in place.

The SDK and the exporters are imported only here, inside :func:`configure`: ``import
function_app`` never pays for them (``bench/import_time.py`` checks it).
"""

from __future__ import annotations

import os
import threading
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import ProxyTracerProvider, get_tracer_provider, set_tracer_provider

from shared.redact import get_logger

if TYPE_CHECKING:
    from shared.settings import AppSettings

_log = get_logger(__name__)

#: The distro's automatic instrumentations, all turned off: the app's own spans cover its
#: storage and Speech calls with redacted URLs, and the host already records each invocation
#: (the page's "Duplicate request telemetry").
AUTO_INSTRUMENTATIONS = (
    "azure_sdk",
    "django",
    "fastapi",
    "flask",
    "httpx",
    "psycopg2",
    "requests",
    "urllib",
    "urllib3",
)
#: ``service.name`` when ``OTEL_SERVICE_NAME`` does not say otherwise.
DEFAULT_SERVICE_NAME = "speech-transcription"


class Exporters(StrEnum):
    """Where this process's telemetry goes."""

    AZURE_MONITOR = "azure-monitor"
    OTLP = "otlp"
    AZURE_MONITOR_AND_OTLP = "azure-monitor+otlp"
    #: A provider someone else installed (the Functions worker, a test).
    EXISTING = "existing"
    NONE = "none"


_configured: Exporters | None = None
_lock = threading.Lock()


def configure(settings: AppSettings | None = None) -> Exporters:
    """Install the exporters the environment asks for; idempotent, thread-safe.

    Telemetry never stops the app: a backend that cannot be configured is logged and left
    out, and the app runs on without it.
    """
    global _configured
    with _lock:
        if _configured is None:
            try:
                _configured = _configure(settings)
            except Exception as exc:  # a bad connection string must not stop transcription
                _log.warning("telemetry not configured: %s", type(exc).__name__)
                _configured = Exporters.NONE
            _log.info("telemetry exporters: %s", _configured)
        return _configured


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def _exporter_names(signal: str) -> set[str]:
    return {n.strip().lower() for n in _env(f"OTEL_{signal}_EXPORTER").split(",") if n.strip()}


def _wants_otlp() -> bool:
    endpoints = (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    )
    named = "otlp" in _exporter_names("TRACES") | _exporter_names("METRICS")
    return named or any(_env(name) for name in endpoints)


def _signal_on(signal: str) -> bool:
    """True when ``OTEL_<SIGNAL>_EXPORTER`` is unset (OTLP is the default) or names ``otlp``.

    ``none`` turns the signal off; other exporters (``console``, ...) are not shipped.
    """
    names = _exporter_names(signal)
    return not names or "otlp" in names


def _configure(settings: AppSettings | None) -> Exporters:
    if _env("OTEL_SDK_DISABLED").lower() == "true":
        return Exporters.NONE
    # The API hands out a proxy until someone sets a provider; anything else was installed
    # on purpose, and a second provider would only be refused by the API.
    if not isinstance(get_tracer_provider(), ProxyTracerProvider):
        return Exporters.EXISTING
    otlp = _wants_otlp()
    connection = _env("APPLICATIONINSIGHTS_CONNECTION_STRING")
    if connection:
        _azure_monitor(connection, settings, otlp=otlp)
        return Exporters.AZURE_MONITOR_AND_OTLP if otlp else Exporters.AZURE_MONITOR
    if otlp:
        _otlp_providers()
        return Exporters.OTLP
    return Exporters.NONE


def _otlp_parts() -> tuple[list[Any], list[Any]]:
    """(span processors, metric readers) exporting OTLP/HTTP, per the ``OTEL_*`` variables."""
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    protocol = _env("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    if protocol != "http/protobuf":
        _log.warning("OTEL_EXPORTER_OTLP_PROTOCOL=%s: only http/protobuf is shipped", protocol)
    # The exporters read endpoint, headers, timeout, compression and certificates from the
    # standard variables themselves.
    processors = [BatchSpanProcessor(OTLPSpanExporter())] if _signal_on("TRACES") else []
    readers = [PeriodicExportingMetricReader(OTLPMetricExporter())] if _signal_on("METRICS") else []
    return processors, readers


def _otlp_providers() -> None:
    from opentelemetry.metrics import set_meter_provider
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create({"service.name": _env("OTEL_SERVICE_NAME") or DEFAULT_SERVICE_NAME})
    processors, readers = _otlp_parts()
    tracer_provider = TracerProvider(resource=resource)
    for processor in processors:
        tracer_provider.add_span_processor(processor)
    set_tracer_provider(tracer_provider)
    set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))


def _azure_monitor(connection: str, settings: AppSettings | None, *, otlp: bool) -> None:
    from azure.identity import ManagedIdentityCredential
    from azure.monitor.opentelemetry import configure_azure_monitor

    # The user-assigned identity the app runs as (api.bicep sets AZURE_CLIENT_ID); it holds
    # Monitoring Metrics Publisher on the component. A credential of its own, not the app
    # context's: the exporters outlive any context (a context is closed and rebuilt).
    client_id = _env("AZURE_CLIENT_ID") or (settings.storage_client_id if settings else None)
    processors, readers = _otlp_parts() if otlp else ([], [])
    configure_azure_monitor(
        connection_string=connection,
        credential=ManagedIdentityCredential(client_id=client_id or None),
        # The host forwards the worker's log lines to the same backend unless the worker
        # declares it exports them itself (PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY):
        # exporting them here as well would write each line twice.
        disable_logging=True,
        instrumentation_options={name: {"enabled": False} for name in AUTO_INSTRUMENTATIONS},
        span_processors=processors,
        metric_readers=readers,
    )
