"""The Speech request budget: shared through the ledger, never overspent, renewed per window."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable

from shared.pipeline.budget import WINDOW_SECONDS, SpeechBudget
from shared.pipeline.claims import IntakeStatus
from shared.pipeline.intake import handle_audio_blob
from shared.pipeline.ledger.job_records import JobRecord, JobSource
from shared.pipeline.ledger.records import SourceKind
from shared.pipeline.poller import finish_requests, poll_once
from tests.pipeline.conftest import Pipeline

WINDOW_START = dt.datetime(2026, 12, 1, 12, 0, 0, tzinfo=dt.UTC)


async def test_concurrent_takers_never_overspend_a_window(pipeline: Pipeline) -> None:
    # 60 a minute: 10 per 10-second window.
    budgets = [SpeechBudget(pipeline.ctx.ledger, per_minute=60) for _ in range(4)]
    now = WINDOW_START + dt.timedelta(seconds=3)

    grants = await asyncio.gather(*(b.take(4, now=now) for b in budgets))

    assert sum(grants) == 10, grants
    assert await budgets[0].take(1, now=now) == 0, "spent until the window ends"
    later = now + dt.timedelta(seconds=WINDOW_SECONDS)
    assert await budgets[0].take(7, now=later) == 7, "a new window, a new budget"
    ring = now + dt.timedelta(seconds=WINDOW_SECONDS * 60)
    assert await budgets[1].take(10, now=ring) == 10, "the slot's old window is reset"


async def test_the_poller_polls_only_what_the_window_allows(
    make_pipeline: Callable[..., Awaitable[Pipeline]],
) -> None:
    pipeline = await make_pipeline()
    await pipeline.admin.faults(job_start_delay_seconds=3600)
    for index in range(4):
        name = await pipeline.upload_fixture("sentence-12.wav", f"budget-{index}.wav")
        outcome = await handle_audio_blob(pipeline.ctx, pipeline.settings.input_container, name)
        assert outcome.status is IntakeStatus.QUEUED
        assert (await pipeline.submit()).jobs == 1  # four jobs of one file each
    pipeline.ctx.settings.speech_requests_per_minute = 12  # from now on, 2 per window
    gets_before = await pipeline.admin.count("Transcriptions_Get")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=WINDOW_SECONDS * 2)

    summary = await poll_once(pipeline.ctx, now=later)

    assert summary.due == 4
    assert summary.polled == 2
    assert summary.deferred == 2
    assert summary.budget_limited
    assert await pipeline.admin.count("Transcriptions_Get") - gets_before == 2
    assert not summary.rate_limited, "planned within the budget, not bounced off the quota"


def test_a_finish_reserves_a_request_per_page_of_results_and_the_delete() -> None:
    def job(files: int) -> JobRecord:
        sources = [JobSource(f"u{i}", "c", f"p{i}", "e", "", f"p{i}") for i in range(files)]
        now = dt.datetime.now(dt.UTC)
        return JobRecord(
            job_id="j",
            display_name="d",
            kind=SourceKind.AUDIO,
            submitted_at=now,
            next_poll_at=now,
            poll_interval_seconds=0,
            sources=sources,
            output_container="out",
        )

    assert finish_requests(job(1)) == 2  # one page (result + report), the delete
    assert finish_requests(job(99)) == 2
    assert finish_requests(job(100)) == 3
    assert finish_requests(job(1000)) == 12  # 1001 files in 11 pages, the delete
