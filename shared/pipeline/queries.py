"""What the status API answers, from the ledger: where is my file, and what became of it?

* :func:`list_transcriptions` — ``GET /api/transcriptions?state=&prefix=``: source rows of
  one container (the input container unless told otherwise) in path order, filtered by
  state and/or path prefix, one bounded page at a time with an opaque continuation token.
* :func:`get_transcription` — ``GET /api/transcriptions/{path}``: every version and
  request of one path, newest first (``latest`` plus ``history``).

Outputs are given as blob names and full URLs *without* any SAS: callers reach them with
their own access (the app hands out no storage credentials). Invalid arguments raise
``ValueError`` naming the parameter, for the HTTP layer to turn into a 400.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from pydantic import Field

from shared.pipeline.api_model import ApiModel
from shared.pipeline.ledger.records import WAITING_STATES, SourceRecord, SourceState
from shared.pipeline.reports import ERROR_SUFFIX

if TYPE_CHECKING:
    from shared.app_context import AppContext

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class OutputLink(ApiModel):
    """One output blob of a transcription."""

    #: ``json``, ``txt``, ``srt``, ``vtt`` or ``error`` (the error report).
    kind: str
    container: str
    name: str
    #: Blob URL without a SAS.
    url: str


class ErrorInfo(ApiModel):
    """Why a file was rejected or failed."""

    code: str
    message: str | None = None


class HistoryEvent(ApiModel):
    """One entry of a version's history."""

    at: dt.datetime
    event: str
    detail: str | None = None


class TranscriptionStatus(ApiModel):
    """One source blob version (one request for it) and what became of it."""

    container: str
    path: str
    etag: str
    #: ``audio``, ``manifest`` or ``manifest-file``.
    kind: str
    state: SourceState
    job_id: str | None = None
    display_name: str | None = None
    received_at: dt.datetime | None = None
    submitted_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    attempts: int = 0
    #: Jobs this version was submitted in; more than one after transient failures.
    submissions: int = 0
    #: For ``Retrying``: when it is submitted again.
    retry_at: dt.datetime | None = None
    #: True once the blob was deleted and its outputs with it.
    outputs_removed: bool = False
    #: For ``Queued`` (and ``Retrying``): the queue group and how long it has waited.
    group: str | None = None
    waiting_seconds: float | None = None
    #: Something to know although nothing failed (a model retiring soon).
    warning: str | None = None
    error: ErrorInfo | None = None
    outputs: list[OutputLink] = Field(default_factory=list)
    #: ``container/path@etag`` of the manifest that asked for this file, if one did.
    manifest: str | None = None
    destination_prefix: str | None = None
    options: dict[str, Any] | None = None
    #: For a manifest: its jobs and how many of its files were taken or rejected.
    job_ids: list[str] = Field(default_factory=list)
    file_count: int | None = None
    rejected_count: int | None = None
    #: ``fast`` or ``batch``: the API that transcribes this version.
    route: str | None = None
    #: Audio length, from the header and then from the result.
    audio_seconds: float | None = None
    #: What happened to this version, oldest first: routing, fallbacks, transcription.
    events: list[HistoryEvent] = Field(default_factory=list)


class TranscriptionPage(ApiModel):
    """One page of :func:`list_transcriptions`; pass ``continuation`` back for the next."""

    container: str
    items: list[TranscriptionStatus]
    continuation: str | None = None


class TranscriptionHistory(ApiModel):
    """Every version and request of one path, newest first."""

    container: str
    path: str
    latest: TranscriptionStatus
    history: list[TranscriptionStatus]


def _kind_of(name: str) -> str:
    if name.endswith(ERROR_SUFFIX):
        return "error"
    return name.rsplit(".", 1)[-1]


def _waited(record: SourceRecord) -> float | None:
    """Seconds a queued version has waited for its job (None once it is in one)."""
    if record.state is not SourceState.QUEUED or record.queued_at is None:
        return None
    return max(0.0, (dt.datetime.now(dt.UTC) - record.queued_at).total_seconds())


def to_status(ctx: AppContext, record: SourceRecord) -> TranscriptionStatus:
    """The API view of a ledger source row."""
    container = record.output_container or ctx.settings.output_container
    names = list(record.outputs)
    if record.report_path and record.state is not SourceState.SUCCEEDED:
        names.append(record.report_path)
    outputs = [
        OutputLink(
            kind=_kind_of(name),
            container=container,
            name=name,
            url=ctx.storage.blob_url(container, name),
        )
        for name in names
    ]
    shows_error = record.state is not SourceState.SUCCEEDED or record.outputs_removed
    error = (
        ErrorInfo(code=record.error_code, message=record.error_message)
        if record.error_code and shows_error
        else None
    )
    return TranscriptionStatus(
        container=record.ref.container,
        path=record.ref.path,
        etag=record.ref.etag,
        kind=record.kind.value,
        state=record.state,
        job_id=record.job_id,
        display_name=record.display_name,
        received_at=record.received_at,
        submitted_at=record.submitted_at,
        completed_at=record.completed_at,
        updated_at=record.updated_at,
        attempts=record.attempts,
        submissions=record.submissions,
        retry_at=record.retry_at if record.state is SourceState.RETRYING else None,
        outputs_removed=record.outputs_removed,
        group=record.group if record.state in WAITING_STATES else None,
        waiting_seconds=_waited(record),
        warning=record.warning,
        error=error,
        outputs=outputs,
        manifest=record.manifest,
        destination_prefix=record.destination_prefix,
        options=record.options,
        route=record.route,
        audio_seconds=record.audio_seconds,
        events=[HistoryEvent.model_validate(entry) for entry in record.history],
        job_ids=record.job_ids,
        file_count=record.file_count,
        rejected_count=record.rejected_count,
    )


def parse_state(value: str | None) -> SourceState | None:
    """``state`` query parameter (any case) -> :class:`SourceState`; ValueError if unknown."""
    if value is None or not value.strip():
        return None
    for state in SourceState:
        if state.value.lower() == value.strip().lower():
            return state
    accepted = ", ".join(s.value for s in SourceState)
    raise ValueError(f"state must be one of {accepted}; got {value!r}")


def encode_continuation(token: dict[str, str] | None) -> str | None:
    """The SDK's continuation (next keys) as an opaque URL-safe string."""
    if not token:
        return None
    raw = json.dumps(token, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continuation(value: str | None) -> dict[str, str] | None:
    """Inverse of :func:`encode_continuation`; ValueError naming the parameter if bad."""
    if not value:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        token = json.loads(raw)
    except (binascii.Error, ValueError):
        raise ValueError("continuation is not a token this API returned") from None
    if not isinstance(token, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in token.items()
    ):
        raise ValueError("continuation is not a token this API returned")
    return token


async def list_transcriptions(
    ctx: AppContext,
    *,
    state: str | None = None,
    prefix: str | None = None,
    container: str | None = None,
    continuation: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
) -> TranscriptionPage:
    """One page of transcriptions of ``container`` (default: the input container)."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}; got {limit}")
    wanted = parse_state(state)
    token = decode_continuation(continuation)
    target = container or ctx.settings.input_container
    records, next_token = await ctx.ledger.query_sources(
        target,
        state=wanted,
        prefix=(prefix or "").lstrip("/") or None,
        limit=limit,
        continuation=token,
    )
    return TranscriptionPage(
        container=target,
        items=[to_status(ctx, r) for r in records],
        continuation=encode_continuation(next_token),
    )


async def get_transcription(
    ctx: AppContext, path: str, *, container: str | None = None
) -> TranscriptionHistory | None:
    """The latest version of ``path`` and its history; None if the ledger never saw it."""
    path = path.lstrip("/")
    if not path:
        raise ValueError("path must name a blob")
    target = container or ctx.settings.input_container
    records = await ctx.ledger.sources_for_path(target, path)
    if not records:
        return None
    history = [to_status(ctx, r) for r in records]
    return TranscriptionHistory(container=target, path=path, latest=history[0], history=history)
