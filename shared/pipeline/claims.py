"""Claims: one invocation's hold on a source version, and how it ends.

A claim is taken (:func:`claim_version`), then resolved to a next state, released after a
transient failure so a retry takes it over at once, or closed because the version is gone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from shared.pipeline.clock import utcnow
from shared.pipeline.ledger.keys import SourceRef
from shared.pipeline.ledger.records import (
    Claim,
    SourceKind,
    SourceRecord,
    SourceState,
    source_fields,
)
from shared.pipeline.outputs import report_failure
from shared.redact import get_logger, redact
from shared.storage_errors import StorageProblem, classify_storage_error

if TYPE_CHECKING:
    from shared.app_context import AppContext
    from shared.storage import BlobInfo

O_co = TypeVar("O_co", covariant=True)

_log = get_logger(__name__)


class IntakeStatus(StrEnum):
    """What an intake (of an audio file or a manifest) did with one blob event."""

    #: Accepted and queued: the submitter puts it in a job with others like it.
    QUEUED = "Queued"
    #: A job holds the blob now (submitted by this call, or found after a crash).
    SUBMITTED = "Submitted"
    #: Transcribed at once by fast transcription; the outputs are written.
    TRANSCRIBED = "Transcribed"
    #: Another delivery of the same version holds or finished it: nothing done.
    DUPLICATE = "Duplicate"
    #: Not accepted; an error report was written.
    REJECTED = "Rejected"
    #: Given up after ``intake_max_attempts``, or storage refused for good; see the ledger.
    FAILED = "Failed"
    #: The blob no longer exists: nothing to do.
    MISSING = "Missing"
    #: The version was deleted or overwritten while it was taken in.
    SUPERSEDED = "Superseded"


def transient_reason(exc: BaseException) -> tuple[str, str]:
    """(code, message) recorded on a released claim: why the attempt failed."""
    return "IntakeError", redact(f"{type(exc).__name__}: {exc}")[:1000]


async def release_after_failure(ctx: AppContext, claim: Claim, exc: BaseException) -> None:
    """Release ``claim`` so the retry of this event can proceed; never raises."""
    code, message = transient_reason(exc)
    try:
        await ctx.ledger.release_claim(claim, now=utcnow(), code=code, message=message)
    except Exception:  # the claim then goes stale and is taken over later instead
        _log.warning("could not release the claim of %s", claim.record.ref.display)


async def reject_claim(
    ctx: AppContext,
    claim: Claim,
    *,
    now: dt.datetime,
    code: str,
    message: str,
    accepted: str | None,
    output_base: str,
    status: Literal["Rejected", "Failed"] = "Rejected",
    manifest: str | None = None,
) -> str:
    """Write the error report, then resolve the claim as Rejected (or Failed).

    The report comes first: should the ledger write fail, the retry writes the same
    report again and resolves the claim then.
    """
    ref = claim.record.ref
    output_container = ctx.settings.output_container
    report = await report_failure(
        ctx,
        ref,
        output_base=output_base,
        output_container=output_container,
        status=status,
        code=code,
        message=message,
        accepted=accepted,
        manifest=manifest,
        now=now,
    )
    await ctx.ledger.resolve_claim(
        claim,
        source_fields(
            state=SourceState(status),
            now=now,
            error_code=code,
            error_message=message,
            report_path=report,
            output_container=output_container,
            output_base=output_base,
        ),
    )
    _log.info("%s %s: %s (%s)", status.lower(), ref.display, code, message)
    return report


async def claim_version(
    ctx: AppContext,
    ref: SourceRef,
    kind: SourceKind,
    *,
    now: dt.datetime,
    extra: Mapping[str, Any] | None = None,
) -> Claim | None:
    """Claim one source version with the app's staleness and attempt limits; None = taken."""
    return await ctx.ledger.claim_source(
        ref,
        kind=kind,
        now=now,
        stale_after=dt.timedelta(minutes=ctx.settings.intake_stale_minutes),
        max_attempts=ctx.settings.intake_max_attempts,
        extra=extra,
    )


async def close_vanished(
    ctx: AppContext, claim: Claim, *, deleted: bool, message: str, now: dt.datetime
) -> str:
    """Mark a claimed version whose blob was deleted or overwritten Superseded; its code.

    No report: the path's outputs belong to the newer version (or to nobody).
    """
    code = "SourceDeleted" if deleted else "SourceChanged"
    await ctx.ledger.resolve_claim(
        claim,
        source_fields(
            state=SourceState.SUPERSEDED, now=now, error_code=code, error_message=message
        ),
    )
    return code


async def end_on_storage_problem(
    ctx: AppContext,
    claim: Claim,
    problem: StorageProblem,
    *,
    output_base: str,
    now: dt.datetime,
) -> tuple[SourceState, str, str, str | None]:
    """End a claim whose storage call failed for good: (state, code, message, report).

    The blob vanishing or changing under the intake supersedes the version; anything else
    permanent (forbidden, invalid, a missing container) is a report a person can act on.
    Retrying would fail the same way, so the host is not asked to.
    """
    if problem.code in ("BlobNotFound", "ConditionNotMet"):
        deleted = problem.code == "BlobNotFound"
        message = f"the blob was {'deleted' if deleted else 'overwritten'} during its intake"
        code = await close_vanished(ctx, claim, deleted=deleted, message=message, now=now)
        return SourceState.SUPERSEDED, code, message, None
    message = f"storage refused a request: {problem.message} ({problem.code})"
    report = await reject_claim(
        ctx,
        claim,
        now=now,
        code=problem.code,
        message=message,
        accepted=None,
        output_base=output_base,
        status="Failed",
    )
    return SourceState.FAILED, problem.code, message, report


async def settle_exception(
    ctx: AppContext,
    claim: Claim,
    exc: BaseException,
    *,
    output_base: str,
    now: dt.datetime,
) -> tuple[IntakeStatus, str, str, str | None]:
    """After ``exc`` in a claimed intake: (status, code, message, report), or re-raise.

    A permanent storage problem ends the claim (:func:`end_on_storage_problem`); anything
    else releases it, so the host's retry of the event takes it over at once, and raises.
    """
    problem = classify_storage_error(exc) if isinstance(exc, Exception) else None
    if problem is None or not problem.permanent:
        await release_after_failure(ctx, claim, exc)
        raise exc
    state, code, message, report = await end_on_storage_problem(
        ctx, claim, problem, output_base=output_base, now=now
    )
    return IntakeStatus(state.value), code, message, report


class OutcomeType(Protocol[O_co]):
    """How an intake reports what it did (``IntakeOutcome``, ``ManifestOutcome``)."""

    def __call__(
        self,
        status: IntakeStatus,
        container: str,
        path: str,
        etag: str | None = ...,
        *,
        code: str | None = ...,
        message: str | None = ...,
        report: str | None = ...,
    ) -> O_co: ...


async def run_claimed(
    ctx: AppContext,
    blob: BlobInfo,
    kind: SourceKind,
    *,
    now: dt.datetime,
    extra: Mapping[str, Any],
    outcome: OutcomeType[O_co],
    process: Callable[[Claim], Awaitable[O_co]],
) -> O_co:
    """Claim one blob version and run ``process`` on it: the frame of every intake.

    A duplicate delivery does nothing; a permanent storage problem ends the claim with its
    outcome; any other failure releases the claim and raises, for the host's retry.
    """
    ref = SourceRef(blob.container, blob.name, blob.etag)
    claim = await claim_version(ctx, ref, kind, now=now, extra=extra)
    if claim is None:
        _log.info("duplicate event for %s: already claimed or done", ref.display)
        return outcome(IntakeStatus.DUPLICATE, ref.container, ref.path, ref.etag)
    try:
        return await process(claim)
    except BaseException as exc:
        status, code, message, report = await settle_exception(
            ctx, claim, exc, output_base=extra.get("OutputBase") or ref.path, now=now
        )
        return outcome(
            status, ref.container, ref.path, ref.etag, code=code, message=message, report=report
        )


async def handle_current(
    ctx: AppContext,
    container: str,
    name: str,
    intake: Callable[[BlobInfo], Awaitable[O_co]],
    outcome: OutcomeType[O_co],
) -> O_co:
    """Take in the blob's *current* version: a newer version always wins over the event's."""
    blob = await ctx.storage.get_properties(container, name)
    if blob is None:
        _log.info("%s/%s is gone: nothing to do", container, name)
        return outcome(IntakeStatus.MISSING, container, name)
    return await intake(blob)


async def recover(
    ctx: AppContext,
    record: SourceRecord,
    *,
    now: dt.datetime,
    intake: Callable[[BlobInfo], Awaitable[O_co]],
    outcome: OutcomeType[O_co],
) -> O_co:
    """Finish an abandoned claim (the sweep calls this).

    If the blob still has the claimed version, the intake runs again (taking the claim
    over). If it was deleted or overwritten, that version cannot be taken in any more: it
    is Superseded, without a report (the path's outputs, if any, belong to the newer
    version, whose own event or the sweep takes it in).
    """
    ref = record.ref
    blob = await ctx.storage.get_properties(ref.container, ref.path)
    if blob is not None and blob.etag == ref.etag:
        return await intake(blob)
    claim = await claim_version(ctx, ref, record.kind, now=now)
    if claim is None:
        return outcome(IntakeStatus.DUPLICATE, ref.container, ref.path, ref.etag)
    what = "deleted" if blob is None else "overwritten"
    message = f"the blob was {what} before it was taken in; a newer version stands alone"
    code = await close_vanished(ctx, claim, deleted=blob is None, message=message, now=now)
    return outcome(
        IntakeStatus.SUPERSEDED, ref.container, ref.path, ref.etag, code=code, message=message
    )
