"""Bulk intake: a JSON manifest names many audio files; they go to Speech in jobs of ≤ 1000.

The document itself (its fields and their checks) is :mod:`~.manifest_document`.

A manifest that is not valid JSON or breaks the schema gets ``<manifest path>.error.json``
naming the field (``files[3]``, ``maxSpeakers``) and is not retried. Each named file is
checked like an upload (exists, extension, size, first bytes); a bad one gets its own
``.error.json`` under the destination prefix and the others go on.

The manifest version is claimed in the ledger exactly like an audio blob, so duplicate
events do nothing. Its resolved file list (the prefix expanded, every file checked) is
stored on its row before anything is submitted, so a retry after a crash cuts the same
chunks, derives the same display names (manifest path + ETag + chunk index) and adopts
the jobs the crashed attempt had submitted instead of submitting them again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from shared.audio_formats import EXTENSIONS, AudioRejected
from shared.pipeline.checks import check_audio_blob, size_text
from shared.pipeline.claims import (
    IntakeStatus,
    handle_current,
    recover,
    reject_claim,
    run_claimed,
)
from shared.pipeline.clock import utcnow
from shared.pipeline.concurrency import bounded
from shared.pipeline.grouping import group_of
from shared.pipeline.ledger.keys import SourceRef
from shared.pipeline.ledger.records import (
    MAX_PACKED_BYTES,
    Claim,
    SourceKind,
    SourceRecord,
    SourceState,
    source_fields,
)
from shared.pipeline.manifest_document import (
    Manifest,
    ManifestError,
    parse_manifest,
)
from shared.pipeline.options import (
    OptionsError,
    resolve_options,
)
from shared.pipeline.outputs import report_failure
from shared.pipeline.reports import ACCEPTED_AUDIO, ACCEPTED_MANIFEST
from shared.pipeline.routing import decide
from shared.redact import get_logger
from shared.settings import Routing
from shared.storage import BlobInfo

if TYPE_CHECKING:
    from shared.app_context import AppContext

_log = get_logger(__name__)

#: A job row holds its sources packed; chunks stay well inside one entity.
_CHUNK_BUDGET = MAX_PACKED_BYTES * 3 // 4


@dataclass(frozen=True)
class ManifestOutcome:
    """The result of one manifest intake."""

    status: IntakeStatus
    container: str
    path: str
    etag: str | None = None
    files_queued: int = 0
    files_rejected: int = 0
    code: str | None = None
    message: str | None = None
    report: str | None = None


@dataclass(frozen=True)
class PlannedFile:
    """One file of a manifest after checking: accepted (no code) or rejected."""

    path: str
    etag: str
    size: int
    code: str | None = None
    message: str | None = None

    def to_json(self) -> list[Any]:
        """Compact form for the ledger."""
        return [self.path, self.etag, self.size, self.code, self.message]

    @classmethod
    def from_json(cls, item: list[Any]) -> PlannedFile:
        """Inverse of :meth:`to_json`."""
        path, etag, size, code, message = item
        return cls(str(path), str(etag), int(size), code, message)


def manifest_origin(ref: SourceRef) -> str:
    """How a manifest version is named on its files' rows: ``container/path@etag``."""
    return ref.display


async def handle_manifest_blob(ctx: AppContext, container: str, name: str) -> ManifestOutcome:
    """Bulk intake of one manifest blob (the requests-container trigger's whole job).

    Returns normally for every outcome the host must not retry; raises on transient
    failures after releasing its claim, like :func:`shared.pipeline.intake.handle_audio_blob`.
    """
    return await handle_current(
        ctx, container, name, lambda blob: intake_manifest(ctx, blob), ManifestOutcome
    )


async def intake_manifest(
    ctx: AppContext, blob: BlobInfo, *, now: dt.datetime | None = None
) -> ManifestOutcome:
    """Claim, validate, expand and queue one manifest version whose properties are known."""
    now = now or utcnow()
    settings = ctx.settings
    return await run_claimed(
        ctx,
        blob,
        SourceKind.MANIFEST,
        now=now,
        extra=source_fields(size=blob.size, output_container=settings.output_container),
        outcome=ManifestOutcome,
        process=lambda claim: _process(ctx, claim, blob, now),
    )


async def recover_manifest(
    ctx: AppContext, record: SourceRecord, *, now: dt.datetime
) -> ManifestOutcome:
    """Finish an abandoned manifest claim (the sweep), like ``recover_audio``."""
    return await recover(
        ctx,
        record,
        now=now,
        intake=lambda blob: intake_manifest(ctx, blob, now=now),
        outcome=ManifestOutcome,
    )


async def _process(
    ctx: AppContext, claim: Claim, blob: BlobInfo, now: dt.datetime
) -> ManifestOutcome:
    settings = ctx.settings
    ref = claim.record.ref

    async def reject(code: str, message: str, *, status: str = "Rejected") -> ManifestOutcome:
        report = await reject_claim(
            ctx,
            claim,
            now=now,
            code=code,
            message=message,
            accepted=ACCEPTED_MANIFEST if status == "Rejected" else None,
            output_base=ref.path,
            status="Rejected" if status == "Rejected" else "Failed",
        )
        return ManifestOutcome(
            IntakeStatus(status),
            ref.container,
            ref.path,
            ref.etag,
            code=code,
            message=message,
            report=report,
        )

    if claim.exhausted:
        return await reject(
            "IntakeFailed",
            f"gave up after {claim.max_attempts} attempts; last error: "
            f"{claim.record.error_message or 'unknown'}",
            status="Failed",
        )
    if blob.size > settings.manifest_max_bytes:
        return await reject(
            "ManifestTooLarge",
            f"the manifest is {blob.size} bytes; the limit is {settings.manifest_max_bytes}",
        )
    try:
        manifest = parse_manifest(await ctx.storage.read_small(blob, settings.manifest_max_bytes))
        options = resolve_options(manifest, settings)
    except (ManifestError, OptionsError) as exc:
        field_name = exc.field if isinstance(exc, ManifestError) else exc.key
        return await reject("InvalidManifest", f"{field_name}: {exc.reason}")
    identification = manifest.language_identification
    if identification is not None and manifest.locale is None:
        # The service still wants a locale; the first candidate is the natural fallback.
        options = options.model_copy(update={"locale": identification.candidate_locales[0]})
    audio_container = manifest.container or settings.input_container
    destination = manifest.destination_prefix or ""

    plan = claim.record.plan
    if plan is None:
        expanded = await _expand(ctx, manifest, audio_container)
        if isinstance(expanded, tuple):
            return await reject("InvalidManifest", f"{expanded[0]}: {expanded[1]}")
        plan = [item.to_json() for item in expanded]
        if not await ctx.ledger.store_plan(claim, plan):
            raise RuntimeError(f"lost the claim of manifest {ref.display} to another instance")
    files = [PlannedFile.from_json(item) for item in plan]
    origin = manifest_origin(ref)
    manifest_label = f"{ref.container}/{ref.path}"

    def file_ref(item: PlannedFile) -> SourceRef:
        return SourceRef(audio_container, item.path, item.etag, origin)

    accepted_files = [f for f in files if f.code is None]
    rejected_files = [f for f in files if f.code is not None]
    accepted_text = ACCEPTED_AUDIO.format(limit=size_text(settings.max_audio_bytes))

    async def put_file(item: PlannedFile, **fields: Any) -> bool:
        """Record one of the manifest's files (its row is created if absent)."""
        return await ctx.ledger.put_file(
            file_ref(item),
            kind=SourceKind.MANIFEST_FILE,
            now=now,
            fields=source_fields(
                manifest=origin,
                destination_prefix=destination,
                size=item.size,
                now=now,
                output_container=settings.output_container,
                output_base=destination + item.path,
                **fields,
            ),
        )

    async def report_rejected(item: PlannedFile) -> None:
        code, message = item.code or "Rejected", item.message or ""
        report = await report_failure(
            ctx,
            file_ref(item),
            output_base=destination + item.path,
            status="Rejected",
            code=code,
            message=message,
            accepted=accepted_text,
            manifest=manifest_label,
            now=now,
        )
        await put_file(
            item,
            state=SourceState.REJECTED,
            error_code=code,
            error_message=message,
            report_path=report,
        )

    await bounded(settings.intake_concurrency, rejected_files, report_rejected)
    if not accepted_files:
        return await reject(
            "NoAudioFiles",
            f"none of the {len(files)} file(s) can be transcribed; each has its own "
            ".error.json under the destination",
        )

    options_record = options.to_dict()
    if identification is not None:
        options_record["languageIdentification"] = identification.model_dump(
            mode="json", by_alias=True
        )
    group, key = group_of(
        options_record,
        output_container=settings.output_container,
        destination_prefix=destination,
    )

    fast_group, fast_key = group_of(
        options_record,
        output_container=settings.output_container,
        destination_prefix=destination,
        fast=True,
    )
    requested = manifest.mode or settings.routing
    source = "the manifest's mode" if manifest.mode else "ROUTING"

    async def queue_file(item: PlannedFile) -> bool:
        blob = BlobInfo(audio_container, item.path, item.size, item.etag)
        extension = PurePosixPath(item.path).suffix.lower()
        decision = await decide(
            ctx,
            blob,
            container=next(iter(EXTENSIONS[extension])),
            options=options,
            requested=requested,
            source=source,
        )
        fast = decision.route is Routing.FAST
        # The entry first, then the row: a queued row always has its entry. A fast file
        # waits in the fast group, which the submitter drains file by file.
        target, target_key = (fast_group, fast_key) if fast else (group, key)
        await ctx.ledger.enqueue(file_ref(item), group=target, key=target_key, due_at=now, now=now)
        event = "RoutedFast" if fast else "RoutedBatch"
        return await put_file(
            item,
            state=SourceState.QUEUED,
            group=target,
            queued_at=now,
            options=options_record,
            route=decision.route.value,
            audio_seconds=decision.audio_seconds,
            history=[{"at": now.isoformat(), "event": event, "detail": decision.reason}],
        )

    await bounded(settings.intake_concurrency, accepted_files, queue_file)
    # The manifest's own work is done: its files go on as their own rows.
    await ctx.ledger.resolve_claim(
        claim,
        source_fields(
            state=SourceState.SUCCEEDED,
            now=now,
            options=options_record,
            error_code="",
            output_container=settings.output_container,
            file_count=len(files),
            rejected_count=len(rejected_files),
            destination_prefix=destination,
            manifest=origin,
            group=group,
        ),
    )
    _log.info(
        "manifest %s: %d file(s) queued in group %s, %d rejected",
        ref.display,
        len(accepted_files),
        group,
        len(rejected_files),
    )
    return ManifestOutcome(
        IntakeStatus.QUEUED,
        ref.container,
        ref.path,
        ref.etag,
        files_queued=len(accepted_files),
        files_rejected=len(rejected_files),
    )


async def _expand(
    ctx: AppContext, manifest: Manifest, container: str
) -> list[PlannedFile] | tuple[str, str]:
    """Every file the manifest names, checked; or (field, message) when it names too many."""
    settings = ctx.settings
    limit = settings.manifest_max_files
    named = list(dict.fromkeys(manifest.files or []))
    if len(named) > limit:
        return "files", f"names {len(named)} files; at most {limit} are allowed"
    if not await ctx.storage.container_exists(container):
        field_name = "container" if manifest.container else "(input container)"
        return field_name, f"there is no container {container!r} in the storage account"
    listed: dict[str, BlobInfo] = {}
    if manifest.prefix is not None:
        found = await ctx.storage.list_blobs(container, manifest.prefix, limit=limit)
        if len(found) > limit:
            return "prefix", f"matches more than {limit} blobs"
        listed = {blob.name: blob for blob in found}
    paths = sorted(set(named) | set(listed))
    if len(paths) > limit:
        return "files", f"files and prefix together name {len(paths)} files; at most {limit}"

    async def check(path: str) -> PlannedFile:
        blob = listed.get(path) or await ctx.storage.get_properties(container, path)
        if blob is None:
            return PlannedFile(path, "", 0, "NotFound", f"there is no blob {container}/{path}")
        checked = await check_audio_blob(ctx.storage, blob, max_bytes=settings.max_audio_bytes)
        if isinstance(checked, AudioRejected):
            return PlannedFile(path, blob.etag, blob.size, checked.code, str(checked))
        return PlannedFile(path, blob.etag, blob.size)

    return await bounded(settings.intake_concurrency, paths, check)
