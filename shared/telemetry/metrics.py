"""The app's metrics: files by state, queue wait, Speech requests, audio transcribed.

Instruments are made once from the API's meter. Before a provider is installed they are
proxies that record nothing; the API rebinds them to the real provider once one is set
(https://opentelemetry.io/docs/specs/otel/metrics/api/#meterprovider), so modules may record
from the start. Each is recorded where the pipeline already makes the state change: no
extra storage call, no polling of the ledger.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from opentelemetry.metrics import get_meter

from shared.telemetry.spans import SCOPE

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, Histogram, Meter


@cache
def meter() -> Meter:
    """The app's meter (a proxy until a provider is installed)."""
    return get_meter(SCOPE)


@cache
def _files() -> Counter:
    return meter().create_counter(
        "transcription.files",
        unit="{file}",
        description="File versions that reached a state, by state and by the stage that moved them",
    )


@cache
def _queue_wait() -> Histogram:
    return meter().create_histogram(
        "transcription.queue.wait",
        unit="s",
        description="Time from a file's queueing (its upload) to its submission in a job",
    )


@cache
def _speech_requests() -> Counter:
    return meter().create_counter(
        "speech.requests",
        unit="{request}",
        description="HTTP requests sent to Speech (every attempt), by operation and outcome",
    )


@cache
def _audio() -> Counter:
    return meter().create_counter(
        "transcription.audio",
        unit="s",
        description="Seconds of audio transcribed, by route (batch or fast)",
    )


def record_file_state(state: str, *, stage: str, count: int = 1) -> None:
    """``count`` files reached ``state`` at ``stage`` (``intake``, ``fast_lane``, ``finishing``).

    A file's state is counted by the stage that sets it: the intake (``Queued``, a fast
    file's ``Succeeded``, ``Rejected``, ...) and finishing. ``fast_lane`` counts how the fast
    lane left the files it tried, its ``Fallback`` to batch included.
    """
    if count > 0:
        _files().add(count, {"state": state, "stage": stage})


def record_queue_wait(seconds: float) -> None:
    """One file waited ``seconds`` in its queue before its job was submitted."""
    _queue_wait().record(max(0.0, seconds))


def record_speech_request(
    method: str, template: str, *, status: int | None = None, error: str | None = None
) -> None:
    """One attempt at a Speech request: its response status, or the transport error's type.

    Attribute names are OpenTelemetry's HTTP client conventions
    (https://opentelemetry.io/docs/specs/semconv/http/http-metrics/), so a 429 is
    ``http.response.status_code=429`` on the same counter.
    """
    attributes: dict[str, str | int] = {"http.request.method": method, "url.template": template}
    if status is not None:
        attributes["http.response.status_code"] = status
    if error is not None:
        attributes["error.type"] = error
    _speech_requests().add(1, attributes)


def record_audio_seconds(seconds: float | None, *, route: str) -> None:
    """``seconds`` of audio transcribed by ``route``; nothing when the length is unknown."""
    if seconds is not None and seconds > 0:
        _audio().add(seconds, {"route": route})
