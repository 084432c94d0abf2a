"""The submitter: queued versions become a few big jobs, within the Speech request budget.

One timer tick (``SUBMIT_SCHEDULE``):

1. **Unfinished batches** — a batch an earlier tick could not finish (it crashed, or the
   submit failed) is resumed with the same members and display name; the job is looked
   up first, so a crash between submitting and recording never makes a second one. (The
   timer is a singleton, and a tick finishes the batches it starts.)
2. **Groups** — for each queue group, its due entries (one range query of at most
   ``MAX_FILES_PER_JOB`` rows). A group is sent when it is full, or when its oldest entry
   has waited ``BATCH_WINDOW_SECONDS``: a lone file waits at most one window plus one tick.
   Each job costs one request of the budget (:mod:`~.budget`); when the window's budget is
   spent, the rest wait for the next tick.

Sending a batch: the batch row (its members) is written first, then each member is
*assigned* by a conditional write (a version is in at most one job at a time), then the
job is submitted with a display name derived from the members, recorded, and each member
marked ``Submitted``. A model named in the options is looked up once per tick first
(:mod:`~.model_check`).

Traces: a tick is a span; a job's submission is a span with a link to each member's trace
(or, for a job of one file, a span in that file's trace), and each member gets a short
``submitted <path>`` span in its own trace, linked to the job's.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from shared.pipeline.budget import SpeechBudget
from shared.pipeline.clock import utcnow
from shared.pipeline.concurrency import bounded
from shared.pipeline.fast_queue import drain_fast_group
from shared.pipeline.grouping import FAST_ROUTE
from shared.pipeline.ledger.job_records import BatchRecord
from shared.pipeline.ledger.records import (
    MAX_PACKED_BYTES,
    WAITING_STATES,
    GroupRow,
    QueueEntry,
    SourceRecord,
    SourceState,
    packed_size,
)
from shared.pipeline.model_check import ModelCheck
from shared.pipeline.options import build_request, options_from_record
from shared.pipeline.outputs import report_failure
from shared.pipeline.submission import (
    batch_id_of,
    custom_properties,
    display_name_for,
    find_or_submit,
    job_source,
    new_job_record,
    service_rejection,
)
from shared.redact import get_logger
from shared.speech.errors import BadRequestError, RateLimitError
from shared.speech.models import TranscriptionRequest
from shared.telemetry import batch_span, file_span, record_queue_wait, traced

if TYPE_CHECKING:
    from shared.app_context import AppContext

_log = get_logger(__name__)

#: Storage calls of one batch in flight at once (reads, assignments, SAS, marks).
CONCURRENCY = 16
#: A job row holds its members packed; a batch stays well inside one entity.
_PACKED_BUDGET = MAX_PACKED_BYTES * 3 // 4
#: Groups read per tick (one per distinct set of options: a handful in practice).
MAX_GROUPS = 1000


@dataclass
class SubmitSummary:
    """What one tick did (logged by the timer function; asserted by tests and benchmarks)."""

    groups: int = 0
    due: int = 0
    jobs: int = 0
    files: int = 0
    #: Due entries left for a later tick: their group's window is still open.
    waiting: int = 0
    rejected: int = 0
    recovered: int = 0
    #: Files of fast groups transcribed (or reported), and those handed back to batch.
    fast: int = 0
    handed_back: int = 0
    budget_limited: bool = False
    errors: int = 0


async def submit_once(ctx: AppContext, *, now: dt.datetime | None = None) -> SubmitSummary:
    """One tick of the submitter, as one span. ``now`` is for tests."""
    with traced("submit tick") as span:
        summary = await _tick(ctx, now or utcnow())
        span.set_attributes(
            {"transcription.jobs": summary.jobs, "transcription.files": summary.files}
        )
    return summary


async def _tick(ctx: AppContext, now: dt.datetime) -> SubmitSummary:
    settings = ctx.settings
    summary = SubmitSummary()
    budget = SpeechBudget(ctx.ledger, per_minute=settings.speech_requests_per_minute)
    models = ModelCheck(ctx)
    groups = await ctx.ledger.groups(limit=MAX_GROUPS)
    keys = {group.group: group.key for group in groups}
    # The timer runs as a singleton and a tick finishes the batches it starts: a batch row
    # seen now is one an earlier tick could not finish (a crash, a failed submit).
    for batch in await ctx.ledger.stale_batches(now, limit=settings.poll_batch_size):
        if await budget.take(2, now=now) < 2:  # a lookup and maybe a submit
            summary.budget_limited = True
            break
        try:
            await _send(ctx, batch, keys.get(batch.group, {}), now, summary, recovering=True)
            summary.recovered += 1
        except Exception:
            summary.errors += 1
            _log.exception("resuming batch %s failed; tried again later", batch.batch_id)
    window = dt.timedelta(seconds=settings.batch_window_seconds)
    for group in groups:
        summary.groups += 1
        if summary.budget_limited:
            break
        try:
            await _group_tick(ctx, group, now, window, summary, budget, models)
        except RateLimitError as exc:
            # The budget is a plan, the service has the last word: wait for its hint.
            summary.budget_limited = True
            _log.warning("submitting throttled (retry after %s s); next tick", exc.retry_after)
            break
        except Exception:
            summary.errors += 1
            _log.exception("submitting group %s failed; tried again next tick", group.group)
    idle = not (summary.due or summary.recovered or summary.errors or summary.fast)
    _log.log(logging.DEBUG if idle else logging.INFO, "submit: %s", summary)
    return summary


async def _group_tick(
    ctx: AppContext,
    group: GroupRow,
    now: dt.datetime,
    window: dt.timedelta,
    summary: SubmitSummary,
    budget: SpeechBudget,
    models: ModelCheck,
) -> None:
    settings = ctx.settings
    if group.key.get("route") == FAST_ROUTE:
        # Manifest files routed fast: transcribed one by one, within the fast budget.
        tally = await drain_fast_group(ctx, group, now)
        summary.fast += tally.transcribed + tally.failed
        summary.handed_back += tally.handed_back
        return
    while True:
        entries = await ctx.ledger.due_entries(group.group, now, limit=settings.max_files_per_job)
        if not entries:
            idle_since = group.last_enqueued_at or now
            if idle_since <= now - window and not await ctx.ledger.queued_count(
                group.group, limit=1
            ):
                await ctx.ledger.drop_group(group)
            return
        summary.due += len(entries)
        full = len(entries) >= settings.max_files_per_job
        waited = min(entry.due_at for entry in entries) <= now - window
        if not (full or waited):
            summary.waiting += len(entries)
            return
        if await budget.take(1, now=now) == 0:
            summary.budget_limited = True
            return
        sent = await _submit_entries(ctx, group, entries, now, summary, models)
        if not full or not sent:
            return


async def _submit_entries(
    ctx: AppContext,
    group: GroupRow,
    entries: list[QueueEntry],
    now: dt.datetime,
    summary: SubmitSummary,
    models: ModelCheck,
) -> bool:
    """Make one batch of the group's due entries; False when nothing could be sent."""
    rows = await bounded(
        CONCURRENCY, entries, lambda e: ctx.ledger.get_source_at(e.source_partition, e.source_row)
    )
    members: list[SourceRecord] = []
    done: list[QueueEntry] = []
    seen: set[str] = set()
    for entry, row in zip(entries, rows, strict=True):
        if row is None or row.state is SourceState.RECEIVED or row.batch:
            continue  # its intake is still resolving, or a batch in flight holds it
        key = f"{row.ref.partition_key}|{row.ref.row_key}"
        if row.state not in WAITING_STATES or key in seen:
            done.append(entry)  # moved on, or a second entry of the same version
            continue
        seen.add(key)
        members.append(row)
    members = _fitting(ctx, members)
    sent = False
    if members:
        verdict = await models.verdict(group.key.get("options", {}).get("model"), now=now)
        if verdict.problem is not None:
            await _fail_members(ctx, members, now, summary, *verdict.problem)
        else:
            batch = _new_batch(ctx, group, members, now)
            created = await ctx.ledger.create_batch(batch)
            await _send(
                ctx,
                batch,
                group.key,
                now,
                summary,
                recovering=not created,
                warning=verdict.warning,
            )
            sent = True
        member_keys = {f"{m.ref.partition_key}|{m.ref.row_key}" for m in members}
        done += [e for e in entries if f"{e.source_partition}|{e.source_row}" in member_keys]
    await ctx.ledger.drop_entries(done)
    return sent


def _fitting(ctx: AppContext, members: list[SourceRecord]) -> list[SourceRecord]:
    """The longest prefix of ``members`` whose job row fits one entity."""
    while len(members) > 1:
        size = packed_size([job_source(ctx, m).to_json() for m in members])
        if size <= _PACKED_BUDGET:
            break
        members = members[: len(members) // 2]
    return members


def _new_batch(
    ctx: AppContext, group: GroupRow, members: list[SourceRecord], now: dt.datetime
) -> BatchRecord:
    batch_id = batch_id_of(members)
    first = min((m.ref for m in members), key=lambda ref: (ref.container, ref.path, ref.etag))
    label = f"{len(members)} file(s): {first.container}/{first.path}"
    return BatchRecord(
        batch_id=batch_id,
        group=group.group,
        display_name=display_name_for("batch", batch_id, label),
        sources=[job_source(ctx, m) for m in members],
        created_at=now,
    )


async def _send(
    ctx: AppContext,
    batch: BatchRecord,
    group_key: dict[str, Any],
    now: dt.datetime,
    summary: SubmitSummary,
    *,
    recovering: bool,
    warning: str | None = None,
) -> None:
    """Assign the batch's members, submit (or find) its job, record it, mark them."""
    assigned = await bounded(
        CONCURRENCY,
        batch.sources,
        lambda s: ctx.ledger.assign(s.ref, batch=batch.batch_id, now=now),
    )
    members = [row for row in assigned if row is not None]
    if not members:
        await ctx.ledger.delete_batch(batch)
        return
    # A job of one file is part of that file's trace; a job of many links to each of them.
    with batch_span(
        "submit job",
        [m.trace_parent for m in members],
        {
            "transcription.batch": batch.batch_id,
            "transcription.group": batch.group,
            "transcription.files": len(members),
            "transcription.recovering": recovering,
        },
    ) as span:
        options_record = group_key.get("options") or members[0].options or {}
        try:
            options, candidates, mode = options_from_record(options_record)
        except (ValidationError, ValueError) as exc:
            await _fail_members(ctx, members, now, summary, "InvalidOptions", str(exc))
            await ctx.ledger.delete_batch(batch)
            return
        sources = [job_source(ctx, m) for m in members]

        async def make_request() -> TranscriptionRequest:
            urls = await bounded(
                CONCURRENCY, sources, lambda s: ctx.storage.sas_url(s.container, s.path, now=now)
            )
            return build_request(
                options,
                display_name=batch.display_name,
                content_urls=urls,
                custom_properties=custom_properties(batch=batch.batch_id, files=str(len(urls))),
                candidate_locales=candidates,
                identification_mode=mode,
            )

        try:
            job_id, reused = await find_or_submit(
                ctx, batch.display_name, make_request, recovering=recovering
            )
        except BadRequestError as exc:
            code, message = service_rejection(exc)
            await _fail_members(ctx, members, now, summary, code, f"the service refused: {message}")
            await ctx.ledger.delete_batch(batch)
            return
        job = new_job_record(
            ctx.settings,
            job_id=job_id,
            display_name=batch.display_name,
            kind=members[0].kind,
            sources=sources,
            now=now,
            output_container=members[0].output_container,
            manifest=members[0].manifest,
            batch=batch.batch_id,
        )
        await ctx.ledger.record_job(job)
        span.set_attribute("transcription.job_id", job_id)

        async def mark(m: SourceRecord) -> SourceRecord | None:
            with file_span(
                f"submitted {m.ref.path}", m.trace_parent, {"transcription.job_id": job_id}
            ):
                marked = await ctx.ledger.mark_submitted(
                    m.ref,
                    batch=batch.batch_id,
                    job_id=job_id,
                    display_name=batch.display_name,
                    now=now,
                    warning=warning,
                )
            # A first submission's wait, from the upload; a retry's would count its earlier job.
            if marked is not None and m.submissions == 0 and m.queued_at is not None:
                record_queue_wait((now - m.queued_at).total_seconds())
            return marked

        marked = await bounded(CONCURRENCY, members, mark)
        await ctx.ledger.delete_batch(batch)
        summary.jobs += 1
        summary.files += sum(row is not None for row in marked)
        _log.info(
            "job %s%s: %d file(s) of group %s",
            job_id,
            " (adopted)" if reused else "",
            len(members),
            batch.group,
        )


async def _fail_members(
    ctx: AppContext,
    members: list[SourceRecord],
    now: dt.datetime,
    summary: SubmitSummary,
    code: str,
    message: str,
) -> None:
    """Every member reported Failed: no job can take them as they are."""

    async def one(row: SourceRecord) -> None:
        base = row.output_base or row.ref.path
        container = row.output_container or ctx.settings.output_container
        report = await report_failure(
            ctx,
            row.ref,
            output_base=base,
            output_container=container,
            status="Failed",
            code=code,
            message=message,
            manifest=row.manifest,
            now=now,
        )
        await ctx.ledger.close_source(
            row.ref,
            state=SourceState.FAILED,
            now=now,
            code=code,
            message=message,
            report_path=report,
            output_container=container,
            output_base=base,
        )

    await bounded(CONCURRENCY, members, one)
    summary.rejected += len(members)
