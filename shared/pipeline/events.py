"""Completion events: the ledger's outbox published as CloudEvents 1.0, at least once.

Every terminal state a version reaches — ``Succeeded``, ``Failed``, ``Rejected``,
``Superseded``, ``Cancelled``; of an audio file, or of a manifest (``data.kind``
``manifest``: its request was taken, or refused) — has an outbox row written before the transition
(:mod:`shared.pipeline.ledger.outbox`). :func:`publish_once` (the ``publish_events``
timer, ``EVENTS_SCHEDULE``) reads a page of them, checks each against its source row,
sends the event and deletes the row:

* **Storage queue** ``EVENTS_QUEUE`` on the app's storage account, keyless with the app's
  credential (created when missing). The message is the event in CloudEvents' structured
  JSON mode, **Base64-encoded** UTF-8 — what a Functions queue trigger reads by default
  (``host.json`` ``messageEncoding: base64``) and what Event Grid's own queue delivery
  writes — so a consumer decodes Base64, then parses JSON (or ``CloudEvent.from_json``).
* **Event Grid** custom topic ``EVENT_GRID_TOPIC_ENDPOINT`` when set, in the CloudEvents
  schema, with the app's Entra credential (role *EventGrid Data Sender*).

Delivery is at least once: a crash after sending and before the row is deleted sends the
same event (same ``id``) again on the next tick; consumers dedupe by ``id``. A destination
that took the event is noted on the row, so an Event Grid outage does not repeat queue
messages. A failed publication is counted on the row and tried every tick; after
:data:`MAX_ATTEMPTS` each tick logs an error (the event is kept, never dropped), on a
page of its own so rows that keep failing never hold up new ones. An outbox row whose
transition never happened (its writer died before the state write, or lost a race) is
dropped once older than :data:`ORPHAN_AFTER`.

``type`` is ``transcription.<state>`` (``transcription.succeeded``, ...), ``source``
``/transcription-pipeline/<storage account>``, ``subject`` ``<container>/<path>``, ``time``
the transition's; ``data`` is :func:`shared.pipeline.ledger.outbox.event_data`: container,
path, etag, kind, state, outputs (container and names), error (code, message), report
path, audio seconds, route, job id and manifest.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import functools
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.pipeline.clock import utcnow
from shared.pipeline.concurrency import bounded
from shared.pipeline.ledger.outbox import OutboxRow, event_data
from shared.pipeline.ledger.records import SourceRecord
from shared.redact import get_logger

if TYPE_CHECKING:
    from azure.core.messaging import CloudEvent

    from shared.app_context import AppContext

_log = get_logger(__name__)

#: Outbox rows per page, pages per tick (a burst of 1000 completions goes out in one tick),
#: and the rows past :data:`MAX_ATTEMPTS` retried per tick.
PAGE_SIZE = 200
MAX_PAGES = 5
STUCK_PAGE_SIZE = 20
#: Failed publications after which every further failure is logged as an error.
MAX_ATTEMPTS = 10
#: An outbox row this old whose transition is not on its source row never had one.
ORPHAN_AFTER = dt.timedelta(minutes=5)
#: Events sent at once.
CONCURRENCY = 8
QUEUE = "queue"
EVENT_GRID = "eventgrid"
EVENT_TYPE_PREFIX = "transcription."


@dataclass
class PublishSummary:
    """What one tick did."""

    published: int = 0
    failed: int = 0
    dropped: int = 0
    waiting: int = 0


def event_source(ctx: AppContext) -> str:
    """The events' ``source``: ``/transcription-pipeline/<storage account name>``."""
    return f"/transcription-pipeline/{ctx.blob_service.account_name}"


def build_event(ctx: AppContext, row: OutboxRow, record: SourceRecord | None) -> CloudEvent[Any]:
    """The CloudEvent of ``row``: data frozen on the row, else from the source ``record``."""
    from azure.core.messaging import CloudEvent

    if row.data is not None:
        data = dict(row.data)
    elif record is not None:
        data = event_data(record, row.state)
    else:
        raise ValueError(f"no data for the event of {row.ref.display}")
    outputs = dict(data.get("outputs") or {})
    outputs["container"] = outputs.get("container") or ctx.settings.output_container
    data["outputs"] = outputs
    return CloudEvent(
        source=event_source(ctx),
        type=f"{EVENT_TYPE_PREFIX}{row.state.value.lower()}",
        subject=f"{row.ref.container}/{row.ref.path}",
        id=row.event_id,
        time=row.at,
        datacontenttype="application/json",
        specversion="1.0",
        data=data,
    )


def structured(event: CloudEvent[Any]) -> dict[str, Any]:
    """``event`` in CloudEvents' structured JSON mode (the queue message)."""
    body: dict[str, Any] = {
        "specversion": event.specversion,
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "subject": event.subject,
        "time": event.time.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        if event.time
        else None,
        "datacontenttype": event.datacontenttype,
        "data": event.data,
    }
    return {key: value for key, value in body.items() if value is not None}


def queue_message(event: CloudEvent[Any]) -> str:
    """The queue message of ``event``: its structured JSON, Base64-encoded UTF-8."""
    text = json.dumps(structured(event), separators=(",", ":"), ensure_ascii=False)
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


class _Destinations:
    """The queue client and, when configured, the Event Grid client of one tick."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.queue: Any = _queue_client(ctx)
        self.event_grid: Any = None
        endpoint = ctx.settings.event_grid_topic_endpoint
        if endpoint:
            from azure.eventgrid import EventGridPublisherClient

            if ctx.credential is None:
                raise RuntimeError("EVENT_GRID_TOPIC_ENDPOINT needs the app's Entra credential")
            self.event_grid = EventGridPublisherClient(endpoint, ctx.credential)

    def wanted(self) -> set[str]:
        """Where every event goes."""
        return {QUEUE} | ({EVENT_GRID} if self.event_grid is not None else set())

    async def send_queue(self, event: CloudEvent[Any]) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        if self.queue is None:
            raise RuntimeError(
                "no queue service: set AudioStorage__queueServiceUri (or AudioStorage)"
            )
        message = queue_message(event)
        try:
            await asyncio.to_thread(self.queue.send_message, message)
        except ResourceNotFoundError:
            # The Bicep creates the queue; offline (and after someone deleted it) it is made here.
            await asyncio.to_thread(self._create_queue)
            await asyncio.to_thread(self.queue.send_message, message)

    def _create_queue(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        with contextlib.suppress(ResourceExistsError):  # another tick made it meanwhile
            self.queue.create_queue()

    async def send_event_grid(self, event: CloudEvent[Any]) -> None:
        await asyncio.to_thread(self.event_grid.send, [event])

    def close(self) -> None:
        for client in (self.queue, self.event_grid):
            if client is not None:
                client.close()


def _queue_client(ctx: AppContext) -> Any | None:
    """The events queue, with the app's short storage retries and timeouts."""
    from azure.storage.queue import ExponentialRetry

    from shared.app_context import queue_client, storage_retry_policy, storage_transport

    settings = ctx.settings
    # Short, like the other storage clients: an outage fails this tick, not the next five.
    return queue_client(
        ctx,
        settings.events_queue,
        retry_policy=storage_retry_policy(settings, ExponentialRetry),
        **storage_transport(settings),
    )


async def publish_once(ctx: AppContext, *, now: dt.datetime | None = None) -> PublishSummary:
    """One tick: outbox pages while they come full and move on (at most :data:`MAX_PAGES`),
    then one page of the rows that keep failing."""
    now = now or utcnow()
    summary = PublishSummary()
    sender: _Destinations | None = None
    tried: set[str] = set()  # once per tick, even if a failure just made a row "stuck"
    try:
        for stuck, pages in ((False, MAX_PAGES), (True, 1)):
            for _ in range(pages):
                page = await ctx.ledger.outbox_page(
                    limit=STUCK_PAGE_SIZE if stuck else PAGE_SIZE,
                    max_attempts=MAX_ATTEMPTS,
                    stuck=stuck,
                )
                rows = [row for row in page if row.event_id not in tried]
                tried.update(row.event_id for row in rows)
                if not rows:
                    break
                if sender is None:
                    sender = await asyncio.to_thread(_Destinations, ctx)
                moved = summary.published + summary.dropped
                await bounded(
                    CONCURRENCY,
                    rows,
                    functools.partial(_publish, ctx, sender, now=now, summary=summary),
                )
                # A short page was the last; one where nothing moved would only come back.
                if len(page) < PAGE_SIZE or summary.published + summary.dropped == moved:
                    break
    finally:
        if sender is not None:
            await asyncio.to_thread(sender.close)
    if summary.published or summary.failed or summary.dropped:
        _log.info("events: %s", summary)
    return summary


async def _publish(
    ctx: AppContext,
    destinations: _Destinations,
    row: OutboxRow,
    *,
    now: dt.datetime,
    summary: PublishSummary,
) -> None:
    """Check one outbox row against its source row; send its event, or drop or keep it."""
    record = None
    if row.data is None:
        record = await ctx.ledger.get_source(row.ref)
        if record is None or not row.matches(record):
            if row.created_at <= now - ORPHAN_AFTER:
                await ctx.ledger.drop_outbox(row)
                summary.dropped += 1
                _log.info(
                    "outbox: %s never became %s; its event is dropped",
                    row.ref.display,
                    row.state.value,
                )
            else:
                summary.waiting += 1  # the transition may be a storage call away
            return
    event = build_event(ctx, row, record)
    sent = set(row.sent_to)
    try:
        # The queue first: it is the app's own, and an Event Grid outage must not hold it.
        for destination in [d for d in (QUEUE, EVENT_GRID) if d in destinations.wanted()]:
            if destination in sent:
                continue
            if destination == QUEUE:
                await destinations.send_queue(event)
            else:
                await destinations.send_event_grid(event)
            sent.add(destination)
    except Exception as exc:
        summary.failed += 1
        reason = f"{type(exc).__name__}: {exc}"
        log = _log.error if row.attempts + 1 >= MAX_ATTEMPTS else _log.warning
        log(
            "event %s of %s (%s) not published, attempt %d: %s",
            row.event_id,
            row.ref.display,
            row.state.value,
            row.attempts + 1,
            reason,
        )
        await ctx.ledger.note_outbox_failure(row, sent_to=sent, error=reason)
        return
    await ctx.ledger.drop_outbox(row)
    summary.published += 1
