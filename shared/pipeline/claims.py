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
from shared.pipeline.reports import write_error_report
from shared.redact import get_logger, redact

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
    report = await write_error_report(
        ctx.storage,
        output_base=output_base,
        container=ref.container,
        path=ref.path,
        etag=ref.etag,
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
    """Mark a claimed version whose blob was deleted or overwritten Failed; its code."""
    code = "SourceDeleted" if deleted else "SourceChanged"
    await ctx.ledger.resolve_claim(
        claim,
        source_fields(state=SourceState.FAILED, now=now, error_code=code, error_message=message),
    )
    return code
