"""Claims: one invocation's hold on a source version, and how it ends.

A claim is taken (:func:`claim_version`), then resolved to a next state, released after a
transient failure so a retry takes it over at once, or closed because the version is gone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from shared.pipeline.clock import utcnow
from shared.pipeline.ledger.keys import SourceRef
from shared.pipeline.ledger.records import Claim, SourceKind, SourceState, source_fields
from shared.pipeline.outputs import report_failure
from shared.redact import get_logger, redact
from shared.storage_errors import StorageProblem

if TYPE_CHECKING:
    from shared.app_context import AppContext

_log = get_logger(__name__)


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
