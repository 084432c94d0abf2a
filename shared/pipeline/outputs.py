"""What lies at a path in the output container: a transcript, a report, or nothing.

The outputs at a path always describe the newest version of its blob. So before anything
is written for a version, :func:`currency` asks Storage whether that version is still the
blob's current one; a transcript replaces an older report, a report replaces older
transcripts, and a deleted blob takes its outputs with it. Files named by a manifest are
explicit requests for one version: they are always current.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from shared.pipeline.reports import ErrorReport, report_path
from shared.redact import get_logger
from shared.render import to_srt, to_text, to_vtt
from shared.storage_errors import classify_storage_error

if TYPE_CHECKING:
    from shared.app_context import AppContext
    from shared.pipeline.ledger.keys import SourceRef
    from shared.speech.models import TranscriptionResult

_log = get_logger(__name__)

#: The transcript files, the ``.json`` completion marker last.
OUTPUT_EXTENSIONS = (".txt", ".srt", ".vtt", ".json")


class Currency(StrEnum):
    """Is a version still the one its path stands for?"""

    CURRENT = "Current"
    #: The blob was overwritten: a newer version exists and owns the path's outputs.
    CHANGED = "SourceChanged"
    #: The blob was deleted: nothing should stand at its path any more.
    DELETED = "SourceDeleted"


SUPERSEDED_MESSAGES = {
    Currency.CHANGED: "the blob was overwritten; the newer version is transcribed on its own",
    Currency.DELETED: "the blob was deleted before its transcript was written",
}


async def currency(ctx: AppContext, ref: SourceRef) -> Currency:
    """Whether ``ref`` is its blob's current version (one HEAD request for uploads)."""
    if ref.origin:
        return Currency.CURRENT
    blob = await ctx.storage.get_properties(ref.container, ref.path)
    if blob is None:
        return Currency.DELETED
    return Currency.CURRENT if blob.etag == ref.etag else Currency.CHANGED


async def write_transcript(
    ctx: AppContext, *, container: str, base: str, raw: bytes, result: TranscriptionResult
) -> list[str]:
    """``.txt``, ``.srt``, ``.vtt``, then the ``.json`` marker; an older report goes first."""
    storage = ctx.storage
    rendered = {".txt": to_text(result), ".srt": to_srt(result), ".vtt": to_vtt(result)}
    for extension, text in rendered.items():
        await storage.write_output(base + extension, text, container=container)
    # A report from an earlier, failed version of this path is no longer true.
    await storage.delete_output(report_path(base), container=container)
    await storage.write_output(base + ".json", raw, container=container)
    return [base + extension for extension in OUTPUT_EXTENSIONS]


async def remove_outputs(
    ctx: AppContext, *, container: str, base: str, report_too: bool
) -> list[str]:
    """Delete the transcripts (and the report) at ``base``; the names that existed."""
    names = [base + extension for extension in OUTPUT_EXTENSIONS]
    if report_too:
        names.append(report_path(base))
    # The marker first: without .json, a half-removed set no longer claims to be done.
    names.sort(key=lambda name: not name.endswith(".json"))
    return [name for name in names if await ctx.storage.delete_output(name, container=container)]


async def report_failure(
    ctx: AppContext,
    ref: SourceRef,
    *,
    output_base: str,
    output_container: str | None = None,
    status: Literal["Rejected", "Failed"],
    code: str,
    message: str,
    accepted: str | None = None,
    job_id: str | None = None,
    manifest: str | None = None,
    now: dt.datetime | None = None,
) -> str:
    """The one way a version's failure is reported: ``.error.json``, older transcripts gone.

    Returns the report's blob name. The transcripts of an earlier version at the same
    path would otherwise pass for this one's.
    """
    container = output_container or ctx.settings.output_container
    document = ErrorReport(
        source=f"{ref.container}/{ref.path}",
        source_url=ctx.storage.blob_url(ref.container, ref.path),
        etag=ref.etag or None,
        status=status,
        code=code,
        message=message,
        accepted=accepted,
        job_id=job_id,
        manifest=manifest,
        timestamp=now or dt.datetime.now(dt.UTC),
    )
    report = report_path(output_base)
    await ctx.storage.write_output(report, document.to_json(), container=container)
    try:
        await remove_outputs(ctx, container=container, base=output_base, report_too=False)
    except Exception as exc:  # the report stands; a leased transcript is its owner's to lift
        problem = classify_storage_error(exc)
        _log.warning(
            "%s: older transcripts at %s not removed: %s",
            ref.display,
            output_base,
            problem.message if problem else type(exc).__name__,
        )
    return report
