"""One trace per file version, on the offline stack, recorded by the real SDK in memory.

The test installs an SDK tracer and meter provider with in-memory exporters before any
context is built; the app's ``configure`` must then use them as they are (the deployed app
relies on the same rule when the Functions worker installs the Azure Monitor distro).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared.pipeline.claims import IntakeStatus
from shared.pipeline.intake import handle_audio_blob
from shared.pipeline.ledger.records import SourceRecord, SourceState
from shared.telemetry import configure
from tests.pipeline.conftest import Pipeline

#: Azurite's well-known account key: no span may carry it (nor any other secret).
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


_PROVIDER = TracerProvider()


def recorded_provider() -> TracerProvider:
    return _PROVIDER


@pytest.fixture(scope="module")
def recorded() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader]]:
    spans = InMemorySpanExporter()
    reader = InMemoryMetricReader()
    tracer_provider = _PROVIDER
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    meter_provider = MeterProvider(metric_readers=[reader])
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    assert trace.get_tracer_provider() is tracer_provider, "a provider was installed before"
    yield spans, reader
    # Later tests in the session must not pile spans up in memory.
    tracer_provider.shutdown()
    meter_provider.shutdown()


@pytest.fixture
def exporter(
    recorded: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> InMemorySpanExporter:
    recorded[0].clear()
    return recorded[0]


def trace_id_of(record: SourceRecord) -> int:
    assert record.trace_parent, f"no traceparent on {record.ref.display}"
    version, trace_id, _span_id, _flags = record.trace_parent.split("-")
    assert version == "00"
    return int(trace_id, 16)


def only(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"{len(found)} spans named {name!r}: {sorted(s.name for s in spans)}"
    return found[0]


def texts_of(span: ReadableSpan) -> list[str]:
    """Everything a span exports as text: name, attributes, events', links' attributes."""
    values = [span.name, *map(str, (span.attributes or {}).values())]
    for event in span.events:
        values += [event.name, *map(str, (event.attributes or {}).values())]
    for link in span.links:
        values += map(str, (link.attributes or {}).values())
    return values


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def speech_spans(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if "http.request.method" in attrs(s)]


def points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    assert data is not None
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def total(reader: InMemoryMetricReader, name: str, **attributes: Any) -> float:
    return float(
        sum(
            p.value
            for p in points(reader, name)
            if attributes.items() <= dict(p.attributes).items()
        )
    )


async def row_of(pipeline: Pipeline, name: str) -> SourceRecord:
    rows = await pipeline.ctx.ledger.sources_for_path(pipeline.settings.input_container, name)
    assert rows, f"no row for {name}"
    return rows[0]


async def test_one_trace_follows_a_batch_file_from_upload_to_transcript(
    make_pipeline: Any,
    exporter: InMemorySpanExporter,
    recorded: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    reader = recorded[1]
    pipeline: Pipeline = await make_pipeline()
    configure()  # as the context's build did: it must keep the test's provider
    assert trace.get_tracer_provider() is recorded_provider(), "never replaced"
    container = pipeline.settings.input_container
    name = await pipeline.upload_fixture("sentence-01.wav", "calls/one.wav")

    outcome = await handle_audio_blob(pipeline.ctx, container, name)
    assert outcome.status is IntakeStatus.QUEUED, outcome
    await pipeline.submit()
    await pipeline.poll_until_idle()

    record = await row_of(pipeline, name)
    assert record.state is SourceState.SUCCEEDED
    spans = list(exporter.get_finished_spans())
    intake = only(spans, f"intake {container}/{name}")
    file_trace = intake.context.trace_id
    assert trace_id_of(record) == file_trace, "the row names the intake's trace"
    mine = [s for s in spans if s.context.trace_id == file_trace]
    submitted = only(mine, f"submitted {name}")
    outputs = only(mine, f"outputs {name}")
    # A job of one file is part of that file's trace: its Speech submission is in it.
    submit = [s for s in speech_spans(mine) if attrs(s)["http.request.method"] == "POST"]
    assert [attrs(s)["http.response.status_code"] for s in submit] == [201], submit
    assert submit[0].kind is SpanKind.CLIENT
    assert attrs(submit[0])["url.template"] == "/speechtotext/transcriptions:submit"
    # Storage calls of the intake (the ranged read, the claim) are in it too.
    assert {"blob download_range", "table create_entity"} <= {s.name for s in mine}
    # The outputs link to the poll of the job, which lives in the poll tick's trace.
    poll = [s for s in spans if s.name == "poll job" and s.context.trace_id != file_trace]
    assert poll, "the job's polls are spans of their own ticks"
    linked = {link.context.span_id for link in outputs.links}
    assert linked & {s.context.span_id for s in poll}, outputs.links
    assert submitted.parent is not None
    assert submitted.parent.trace_id == file_trace

    every_request = speech_spans(spans)
    assert every_request, "every Speech request is a span"
    for span in every_request:
        attributes = attrs(span)
        assert "http.response.status_code" in attributes or "error.type" in attributes, span
        assert attributes["url.full"].startswith("http"), attributes
    downloads = [s for s in every_request if attrs(s)["url.template"].startswith("/results/")]
    assert downloads, "the result download (a SAS URL) is traced"
    for span in spans:
        for text in texts_of(span):
            assert "sig=" not in text, (span.name, text)
            assert AZURITE_KEY not in text
            assert "Bearer" not in text

    assert total(reader, "speech.requests", **{"http.response.status_code": 201}) >= 1
    assert total(reader, "speech.requests") >= len(every_request)
    assert total(reader, "transcription.audio", route="batch") > 1, "seconds of audio"
    assert total(reader, "transcription.files", state="Queued", stage="intake") >= 1
    assert total(reader, "transcription.files", state="Succeeded", stage="finishing") >= 1
    waits = points(reader, "transcription.queue.wait")
    assert waits
    assert sum(p.count for p in waits) >= 1


async def test_the_fast_lane_is_part_of_the_intake_trace(
    make_pipeline: Any,
    exporter: InMemorySpanExporter,
    recorded: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    reader = recorded[1]
    pipeline: Pipeline = await make_pipeline(routing="fast")
    container = pipeline.settings.input_container
    name = await pipeline.upload_fixture("sentence-02.wav", "voicemail/two.wav")
    before = total(reader, "transcription.audio", route="fast")

    outcome = await handle_audio_blob(pipeline.ctx, container, name)

    assert outcome.status is IntakeStatus.TRANSCRIBED, outcome
    spans = list(exporter.get_finished_spans())
    intake = only(spans, f"intake {container}/{name}")
    fast = only(spans, "fast transcription")
    assert fast.parent is not None
    assert fast.parent.span_id == intake.context.span_id
    transcribe = [
        s
        for s in speech_spans(spans)
        if attrs(s)["url.template"] == "/speechtotext/transcriptions:transcribe"
    ]
    assert len(transcribe) == 1
    assert transcribe[0].context.trace_id == intake.context.trace_id
    assert attrs(transcribe[0])["http.response.status_code"] == 200
    assert trace_id_of(await row_of(pipeline, name)) == intake.context.trace_id
    assert total(reader, "transcription.audio", route="fast") > before
    assert total(reader, "transcription.files", state="Succeeded", stage="fast_lane") >= 1
