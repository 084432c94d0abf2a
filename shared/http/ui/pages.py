"""What the status page shows, gathered from the ledger and storage as plain view models.

* :func:`list_view` — counts per state, the oldest waiting file, recent failures, one page of
  the ledger under the filters, and audio hours and cost per day and per prefix.
* :func:`file_view` — every version of one path with its events, the first lines of its
  transcript (one ranged read) and download links as short-lived read-only SAS URLs.

The templates only format what is here; nothing below renders HTML.
"""

from __future__ import annotations

import asyncio
import codecs
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.pipeline import queries, stats
from shared.pipeline.ledger import actions
from shared.pipeline.ledger.records import WAITING_STATES, SourceState

if TYPE_CHECKING:
    from shared.app_context import AppContext
    from shared.pipeline.queries import TranscriptionHistory, TranscriptionPage, TranscriptionStatus

#: States in which work is still going on: the page refreshes itself while any file is in one.
IN_FLIGHT = frozenset(
    {SourceState.RECEIVED, SourceState.QUEUED, SourceState.SUBMITTED, SourceState.RETRYING}
)
#: How often a page reloads itself while its files are in flight.
REFRESH_SECONDS = 5
#: Versions the re-run and cancel endpoints take: the page offers exactly those actions.
#: A cancel of a Submitted version asks its job to stop; a waiting one stops at once.
RERUNNABLE = actions.RERUNNABLE
CANCELLABLE = WAITING_STATES | {SourceState.SUBMITTED}
#: Recent failures shown on the list page, picked newest first from one page of the ledger
#: (the ledger lists in path order, so "newest" is within the first FAILURE_SCAN rows).
RECENT_FAILURES = 10
FAILURE_SCAN = queries.MAX_PAGE_SIZE
#: The transcript preview: at most this many lines of one ranged read of this many bytes.
PREVIEW_LINES = 20
PREVIEW_BYTES = 4096
USAGE_DAYS = 30
#: Output kinds in the order their download links are listed.
DOWNLOAD_ORDER = ("txt", "srt", "vtt", "json", "error")


@dataclass(frozen=True)
class Filters:
    """The list page's query: state, path prefix, container, page size and position."""

    state: SourceState | None = None
    prefix: str | None = None
    container: str | None = None
    limit: int = queries.DEFAULT_PAGE_SIZE
    continuation: str | None = None

    @property
    def limit_param(self) -> int | None:
        """``limit`` for links, None when it is the default (kept out of the URL)."""
        return None if self.limit == queries.DEFAULT_PAGE_SIZE else self.limit


@dataclass(frozen=True)
class StateCount:
    """One state and how many file versions are in it."""

    state: str
    count: int
    in_flight: bool


@dataclass(frozen=True)
class ListView:
    """Everything the list page shows."""

    filters: Filters
    counts: list[StateCount]
    oldest: stats.WaitingFile | None
    failures: list[TranscriptionStatus]
    #: True when more failures exist than were scanned for the newest ones.
    failures_partial: bool
    page: TranscriptionPage
    usage: stats.Usage
    #: Files one bulk re-run takes at most (``RETRY_MAX_PER_CALL``).
    retry_max: int

    @property
    def in_flight(self) -> int:
        """Versions that are not done yet."""
        return sum(c.count for c in self.counts if c.in_flight)

    @property
    def refresh_seconds(self) -> int | None:
        """The page reloads itself this often while any version is in flight."""
        return REFRESH_SECONDS if self.in_flight else None

    @property
    def total(self) -> int:
        return sum(c.count for c in self.counts)

    @property
    def active_days(self) -> list[stats.DayUsage]:
        """The usage days that had any files or audio, newest first."""
        return [
            d
            for d in reversed(self.usage.days)
            if any(d.files.values()) or any(d.audio_seconds.values())
        ]

    @property
    def failure_scan(self) -> int:
        """Failures looked at for the newest ones."""
        return FAILURE_SCAN


@dataclass(frozen=True)
class Download:
    """A link to one output blob: read-only, valid for the page's SAS lifetime."""

    kind: str
    name: str
    url: str


@dataclass(frozen=True)
class Preview:
    """The transcript's first lines, or why there are none."""

    lines: list[str]
    truncated: bool = False
    missing: str | None = None


@dataclass(frozen=True)
class FileView:
    """Everything a file's page shows."""

    history: TranscriptionHistory
    downloads: list[Download]
    preview: Preview | None
    sas_minutes: int

    @property
    def refresh_seconds(self) -> int | None:
        """The page reloads itself this often while the latest version is in flight."""
        return REFRESH_SECONDS if self.history.latest.state in IN_FLIGHT else None


def _newest_first(items: list[TranscriptionStatus]) -> list[TranscriptionStatus]:
    """``items`` by when they last moved, newest first."""
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    return sorted(
        items, key=lambda s: s.completed_at or s.updated_at or s.received_at or epoch, reverse=True
    )


async def list_view(ctx: AppContext, filters: Filters) -> ListView:
    """The list page's data (the filters are valid: the handler checked them)."""
    page, failed, counts, oldest, usage = await asyncio.gather(
        queries.list_transcriptions(
            ctx,
            state=filters.state.value if filters.state else None,
            prefix=filters.prefix,
            container=filters.container,
            continuation=filters.continuation,
            limit=filters.limit,
        ),
        queries.list_transcriptions(
            ctx,
            state=SourceState.FAILED.value,
            prefix=filters.prefix,
            container=filters.container,
            limit=FAILURE_SCAN,
        ),
        stats.state_counts(ctx),
        stats.oldest_waiting(ctx),
        stats.usage(ctx, days=USAGE_DAYS),
    )
    return ListView(
        filters=filters,
        counts=[
            StateCount(state=s.value, count=counts.get(s.value, 0), in_flight=s in IN_FLIGHT)
            for s in SourceState
        ],
        oldest=oldest,
        failures=_newest_first(failed.items)[:RECENT_FAILURES],
        failures_partial=failed.continuation is not None,
        page=page,
        usage=usage,
        retry_max=ctx.settings.retry_max_per_call,
    )


def _first_lines(data: bytes, *, complete: bool) -> Preview:
    """Up to :data:`PREVIEW_LINES` lines of UTF-8 ``data`` (a head of the blob when not
    ``complete``: a character cut at the end is held back, not shown as garbage)."""
    text = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(data, final=complete)
    lines = text.splitlines()
    cut = not complete or len(lines) > PREVIEW_LINES
    if not complete and len(lines) > 1 and not text.endswith("\n"):
        # The last line goes on past the bytes read; show it whole or not at all.
        lines = lines[:-1]
    return Preview(lines=lines[:PREVIEW_LINES], truncated=cut)


async def _preview(ctx: AppContext, status: TranscriptionStatus) -> Preview | None:
    """The first lines of the version's ``.txt`` output; None when it has none."""
    from azure.core.exceptions import ResourceModifiedError

    txt = next((o for o in status.outputs if o.kind == "txt"), None)
    if txt is None or status.outputs_removed:
        return None
    blob = await ctx.storage.get_properties(txt.container, txt.name)
    if blob is None:
        return Preview(lines=[], missing="the transcript is not in storage (any more)")
    try:
        head = await ctx.storage.read_head(blob, PREVIEW_BYTES)
    except ResourceModifiedError:
        return Preview(lines=[], missing="the transcript is being rewritten; reload the page")
    return _first_lines(head, complete=len(head) >= blob.size)


async def _downloads(ctx: AppContext, status: TranscriptionStatus) -> list[Download]:
    """A read-only SAS link per output, valid ``DOWNLOAD_SAS_MINUTES``; none once removed."""
    if status.outputs_removed:
        return []
    lifetime = dt.timedelta(minutes=ctx.settings.download_sas_minutes)
    outputs = sorted(
        status.outputs,
        key=lambda o: (
            DOWNLOAD_ORDER.index(o.kind) if o.kind in DOWNLOAD_ORDER else len(DOWNLOAD_ORDER)
        ),
    )
    urls = await asyncio.gather(
        *(ctx.storage.sas_url(o.container, o.name, lifetime=lifetime) for o in outputs)
    )
    return [
        Download(kind=o.kind, name=o.name, url=url) for o, url in zip(outputs, urls, strict=True)
    ]


async def file_view(ctx: AppContext, path: str, *, container: str | None) -> FileView | None:
    """One path's page data; None if the ledger never saw it.

    Outputs live at one name per path and always describe the newest version, so only the
    latest version gets a preview and download links.
    """
    history = await queries.get_transcription(ctx, path, container=container)
    if history is None:
        return None
    preview, downloads = await asyncio.gather(
        _preview(ctx, history.latest), _downloads(ctx, history.latest)
    )
    return FileView(
        history=history,
        downloads=downloads,
        preview=preview,
        sas_minutes=ctx.settings.download_sas_minutes,
    )
