"""``shared.telemetry``: exporters chosen by the environment, and what the spans carry.

A process has one tracer and one meter provider, for good: every case that installs (or
must not install) one runs in a fresh interpreter, against local collectors started here —
OTLP over HTTP, and an Application Insights ingestion endpoint behind TLS with a managed
identity endpoint beside it, so the Entra-authenticated export is exercised for real.
"""

from __future__ import annotations

import http.server
import json
import os
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import trustme
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from shared.telemetry import span_url, url_template
from shared.telemetry.setup import AUTO_INSTRUMENTATIONS
from tests.infra.test_app_settings import resolved_values

ROOT = Path(__file__).resolve().parents[1]
JOB = "0f8f1b2c-1111-2222-3333-444455556666"
#: Drives one Speech request through the real pipeline (to an in-process transport) and
#: records each metric once, after ``configure()``; prints what configure chose.
SCRIPT = textwrap.dedent(
    f"""
    import asyncio, sys
    import httpx
    from shared import telemetry
    from shared.speech.pipeline import Pipeline

    exporters = telemetry.configure()

    async def main():
        transport = httpx.MockTransport(lambda request: httpx.Response(200, json={{}}))
        async with httpx.AsyncClient(transport=transport) as http:
            with telemetry.traced("intake in/one.wav") as span:
                await Pipeline(http).send(
                    "GET",
                    "https://speech.example/speechtotext/transcriptions/{JOB}",
                    params={{"api-version": "2024-11-15", "sig": "SECRET-SIGNATURE"}},
                    auth=None,
                    idempotent=True,
                )
                recording = span.is_recording()
        telemetry.record_file_state("Queued", stage="intake")
        telemetry.record_audio_seconds(12.5, route="batch")
        telemetry.record_queue_wait(3.0)
        return recording

    recording = asyncio.run(main())
    loaded = sorted(
        m for m in sys.modules
        if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter", "azure.monitor"))
    )
    print(exporters.value, recording, telemetry.current_traceparent(), len(loaded))
    """
)
#: Settings of the parent process that would choose an exporter for the child.
_TELEMETRY_ENV = ("OTEL_", "APPLICATIONINSIGHTS_", "IDENTITY_", "AZURE_CLIENT_ID")


def run_app(**env: str) -> list[str]:
    """Run :data:`SCRIPT` in a fresh interpreter with ``env``; its printed words."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(_TELEMETRY_ENV)}
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.split()


@dataclass
class Collector:
    """A local HTTP(S) server that records every request and answers 200."""

    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""
    #: The token the managed identity endpoint (``/msi/token``) hands out.
    token: str = "local-entra-token-for-monitor"

    def received(self, path: str) -> list[tuple[str, dict[str, str], bytes]]:
        return [(q, h, b) for p, q, h, b in self.requests if p == path]


def serve(context: ssl.SSLContext | None = None) -> Iterator[Collector]:
    collector = Collector()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            collector.requests.append((parts.path, parts.query, dict(self.headers), body))
            reply: dict[str, object]
            if parts.path == "/msi/token":
                reply = {
                    "access_token": collector.token,
                    "expires_on": str(int(time.time()) + 3600),
                    "resource": "https://monitor.azure.com",
                    "token_type": "Bearer",
                }
            else:
                reply = {"itemsReceived": 1, "itemsAccepted": 1, "errors": []}
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _record

        def log_message(self, format: str, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    scheme = "https" if context else "http"
    collector.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield collector
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def otlp_collector() -> Iterator[Collector]:
    yield from serve()


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ingestion(ca: trustme.CA) -> Iterator[Collector]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    yield from serve(context)


def test_without_an_exporter_nothing_is_recorded_and_nothing_breaks() -> None:
    exporters, recording, traceparent, loaded = run_app()
    assert exporters == "none"
    assert recording == "False", "the API's no-op spans"
    assert traceparent == "None", "nothing to store on a ledger row"
    assert loaded == "0", "neither the SDK nor an exporter was even imported"


def test_a_provider_installed_before_is_kept() -> None:
    # As the Functions worker installs the distro's when PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY
    # is set: configuring a second one would export everything twice.
    script = (
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.trace import get_tracer_provider, set_tracer_provider\n"
        "from shared import telemetry\n"
        "provider = TracerProvider()\n"
        "set_tracer_provider(provider)\n"
        "print(telemetry.configure().value, get_tracer_provider() is provider)\n"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(_TELEMETRY_ENV)}
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**base, "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=x"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.split() == ["existing", "True"]


def test_otel_sdk_disabled_wins_over_a_connection_string() -> None:
    words = run_app(
        OTEL_SDK_DISABLED="true",
        APPLICATIONINSIGHTS_CONNECTION_STRING="InstrumentationKey=00000000-0000-0000-0000-000000000000",
    )
    assert words[0] == "none"
    assert words[-1] == "0"


def test_otlp_exports_spans_and_metrics_to_a_collector(otlp_collector: Collector) -> None:
    exporters, recording, _traceparent, _loaded = run_app(
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_collector.url,
        OTEL_SERVICE_NAME="stt-under-test",
    )

    assert (exporters, recording) == ("otlp", "True")
    traces = otlp_collector.received("/v1/traces")
    assert traces, f"no spans exported: {[r[0] for r in otlp_collector.requests]}"
    spans = {}
    for _query, _headers, body in traces:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            assert resource["service.name"] == "stt-under-test"
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans[span.name] = span
    speech = spans["GET /speechtotext/transcriptions/{id}"]
    intake = spans["intake in/one.wav"]
    assert speech.trace_id == intake.trace_id
    assert speech.parent_span_id == intake.span_id
    attributes = {a.key: a.value for a in speech.attributes}
    assert attributes["http.response.status_code"].int_value == 200
    assert attributes["url.full"].string_value == (
        f"https://speech.example/speechtotext/transcriptions/{JOB}?api-version=2024-11-15"
    )
    for _query, _headers, body in traces:
        assert b"SECRET-SIGNATURE" not in body
    names = set()
    for _query, _headers, body in otlp_collector.received("/v1/metrics"):
        request = ExportMetricsServiceRequest.FromString(body)
        names |= {
            metric.name
            for resource_metrics in request.resource_metrics
            for scope_metrics in resource_metrics.scope_metrics
            for metric in scope_metrics.metrics
        }
    assert {
        "speech.requests",
        "transcription.files",
        "transcription.audio",
        "transcription.queue.wait",
    } <= names


def test_application_insights_export_is_authenticated_with_the_managed_identity(
    ingestion: Collector, ca: trustme.CA, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    client_id = "11111111-2222-3333-4444-555555555555"

    exporters, recording, _traceparent, _loaded = run_app(
        APPLICATIONINSIGHTS_CONNECTION_STRING=(
            "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
            f"IngestionEndpoint={ingestion.url}/;LiveEndpoint={ingestion.url}/"
        ),
        AZURE_CLIENT_ID=client_id,
        IDENTITY_ENDPOINT=f"{ingestion.url}/msi/token",
        IDENTITY_HEADER="local-identity-header-secret",
        REQUESTS_CA_BUNDLE=str(bundle),
        # The distro's default sampler admits ~5 traces a second, fewer in its first 200 ms:
        # the one trace here must not depend on timing.
        OTEL_TRACES_SAMPLER="always_on",
        # No call to Microsoft's own endpoints from a test: usage statistics, remote config.
        APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL="true",
        APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED="true",
    )

    assert (exporters, recording) == ("azure-monitor", "True")
    tokens = ingestion.received("/msi/token")
    assert tokens, "the exporter asked the managed identity endpoint for a token"
    query = parse_qs(tokens[0][0])
    assert "monitor.azure.com" in query["resource"][0]
    assert query["client_id"] == [client_id], "the app's user-assigned identity"
    tracks = ingestion.received("/v2.1/track")
    assert tracks, f"nothing ingested: {[r[0] for r in ingestion.requests]}"
    items = []
    for _query, headers, body in tracks:
        assert headers["Authorization"] == f"Bearer {ingestion.token}"
        assert b"SECRET-SIGNATURE" not in body
        items += [json.loads(line) for line in _lines(body)]
    data = [i["data"]["baseData"] for i in items if "baseData" in i["data"]]
    assert "intake in/one.wav" in {d.get("name") for d in data}
    # Application Insights names an HTTP dependency by its method and path itself.
    speech = [d for d in data if d.get("type") == "HTTP"]
    assert [d["name"] for d in speech] == [f"GET /speechtotext/transcriptions/{JOB}"], data
    assert speech[0]["resultCode"] == "200"
    assert speech[0]["data"].endswith("?api-version=2024-11-15"), "the redacted URL only"


def _lines(body: bytes) -> list[str]:
    """The JSON items of an ingestion payload (an array, or one item per line; maybe gzip)."""
    import gzip

    text = (gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body).decode()
    stripped = text.strip()
    if stripped.startswith("["):
        return [json.dumps(item) for item in json.loads(stripped)]
    return [line for line in stripped.splitlines() if line.strip()]


def test_the_deployment_turns_off_the_same_instrumentations() -> None:
    values = resolved_values()
    assert values["PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"] == "true"
    deployed = values["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"].split(",")
    assert sorted(deployed) == sorted(AUTO_INSTRUMENTATIONS)


def test_host_json_turns_on_the_hosts_open_telemetry_mode() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["telemetryMode"] == "OpenTelemetry"


@pytest.mark.parametrize(
    ("url", "template"),
    [
        (
            f"https://x/speechtotext/transcriptions/{JOB}/files",
            "/speechtotext/transcriptions/{id}/files",
        ),
        (f"https://x/speechtotext/webhooks/{JOB}:ping", "/speechtotext/webhooks/{id}:ping"),
        ("https://x/speechtotext/transcriptions:submit", "/speechtotext/transcriptions:submit"),
        (
            f"https://st/bestor-{JOB}/TranscriptionData/{JOB}_0_0.json?sig=s",
            "/{id}/TranscriptionData/{id}",
        ),
        ("http://127.0.0.1:1/results/a1b2c3d4e5f6a7b8c9/f?sig=s", "/results/{id}/f"),
    ],
)
def test_url_templates_name_operations_not_resources(url: str, template: str) -> None:
    assert url_template(url) == template


def test_span_urls_keep_only_what_is_safe() -> None:
    url = "https://st.blob/c/a.json?skoid=oid&sktid=tid&sig=SECRET&se=2030&api-version=2024-11-15"
    assert span_url(url) == "https://st.blob/c/a.json?api-version=2024-11-15"
    assert span_url("https://x/y") == "https://x/y"
