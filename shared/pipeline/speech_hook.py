"""The app's Speech web hook: kept registered and healthy, and what a delivery does.

With ``SPEECH_WEBHOOKS=on`` the service calls ``/api/speech/webhooks`` when a transcription
ends (event ``transcriptionCompletion``), and that job is made due at once instead of
waiting for its next poll. Polling stays as the backstop: while the hook is healthy a job
is polled every ``WEBHOOK_POLL_INTERVAL_SECONDS`` only.

:func:`ensure_hook` runs on the sweep's timer, at most once per ``WEBHOOK_CHECK_SECONDS``:
it finds the app's hook (by display name and URL), registers it when missing, pushes a
rotated secret, and revives one the service marked ``Failed`` (after repeated failed
deliveries or a failed challenge): first by an update, which re-runs the challenge, then,
if it is still failed at the next check, by deleting it and registering a new one.
Microsoft's "Web Hooks - Create" and "Web Hooks - Update" pages describe the challenge:
https://learn.microsoft.com/rest/api/speechtotext/web-hooks/create .
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from shared.pipeline.budget import SpeechBudget
from shared.pipeline.clock import utcnow
from shared.pipeline.ledger.hooks import HookState
from shared.redact import get_logger, redact
from shared.speech.errors import NotFoundError, SpeechError
from shared.speech.models import (
    WebHook,
    WebHookEventSettings,
    WebHookRequest,
    WebHookRequestProperties,
    WebHookUpdate,
)

if TYPE_CHECKING:
    from shared.app_context import AppContext

_log = get_logger(__name__)

#: The display name of the app's hook; the URL tells two deployments' hooks apart.
HOOK_NAME = "speech-transcription-pipeline"
#: Requests one check may make: list, then an update or a delete and a create.
CHECK_REQUESTS = 3


def secret_digest(secret: str) -> str:
    """A short digest of the secret, so a rotation is noticed without storing the secret."""
    return hashlib.sha256(b"speech-webhook-secret:" + secret.encode()).hexdigest()[:16]


def _secret(ctx: AppContext) -> str:
    value = ctx.settings.speech_webhook_secret
    return value.get_secret_value() if value is not None else ""


def _request(ctx: AppContext, url: str) -> WebHookRequest:
    return WebHookRequest(
        display_name=HOOK_NAME,
        web_url=url,
        events=WebHookEventSettings(transcription_completion=True),
        description="Announces finished transcription jobs to the transcription pipeline.",
        properties=WebHookRequestProperties(secret=SecretStr(_secret(ctx))),
    )


@dataclass(frozen=True)
class HookCheck:
    """What one check did (for logs and tests)."""

    action: str
    status: str | None = None
    hook_id: str | None = None


async def _ours(ctx: AppContext, url: str) -> list[WebHook]:
    hooks = []
    async for hook in ctx.speech.webhooks.list_webhooks():
        if hook.display_name == HOOK_NAME and hook.web_url == url:
            hooks.append(hook)
    return hooks


async def ensure_hook(ctx: AppContext, *, now: dt.datetime | None = None) -> HookCheck:
    """Register, update or revive the app's web hook; a no-op between checks."""
    now = now or utcnow()
    settings = ctx.settings
    url = settings.webhook_url
    if url is None:
        return HookCheck("off")
    state = await ctx.ledger.get_hook()
    # A tenth early: the sweep's own period often equals the interval, and a tick that
    # starts a little early must not skip a check (and leave the hook unseen for two).
    due = state.checked_at is None or now - state.checked_at >= dt.timedelta(
        seconds=0.9 * settings.webhook_check_seconds
    )
    if not due:
        return HookCheck("skipped", state.status, state.hook_id)
    budget = SpeechBudget(ctx.ledger, per_minute=settings.speech_requests_per_minute)
    if await budget.take(CHECK_REQUESTS, now=now) < CHECK_REQUESTS:
        return HookCheck("deferred", state.status, state.hook_id)
    try:
        check = await _check(ctx, state, url)
    except SpeechError as exc:
        _log.warning("the web hook check failed: %s", exc)
        state.message = redact(str(exc))[:500]
        check = HookCheck("error", state.status, state.hook_id)
    state.checked_at = now
    await ctx.ledger.save_hook(state)
    if check.action not in ("healthy", "skipped"):
        _log.info("web hook %s: %s (status %s)", check.hook_id, check.action, check.status)
    return check


async def _check(ctx: AppContext, state: HookState, url: str) -> HookCheck:
    """One check against the service; ``state`` is updated in place."""
    webhooks = ctx.speech.webhooks
    digest = secret_digest(_secret(ctx))
    found = await _ours(ctx, url)
    hook = next((h for h in found if h.id == state.hook_id), found[0] if found else None)
    for extra in found:
        if hook is not None and extra.id != hook.id and extra.id:
            # A crash between a create and the row's write registers a second one.
            await webhooks.delete_webhook(extra.id, missing_ok=True)
    if hook is None or not hook.id:
        created = await webhooks.create_webhook(_request(ctx, url))
        _remember(state, created, url, digest, reenable_tried=False)
        return HookCheck("registered", state.status, state.hook_id)
    status = str(hook.status) if hook.status is not None else None
    if status == "Failed":
        why = hook.properties.error.message if hook.properties and hook.properties.error else None
        if state.reenable_tried and state.hook_id == hook.id:
            await webhooks.delete_webhook(hook.id, missing_ok=True)
            created = await webhooks.create_webhook(_request(ctx, url))
            _remember(state, created, url, digest, reenable_tried=False, message=why)
            return HookCheck("replaced", state.status, state.hook_id)
        updated = await _update(
            ctx,
            hook.id,
            WebHookUpdate(
                properties=WebHookRequestProperties(secret=SecretStr(_secret(ctx))),
                events=WebHookEventSettings(transcription_completion=True),
            ),
        )
        _remember(state, updated or hook, url, digest, reenable_tried=True, message=why)
        return HookCheck("reenabled", state.status, state.hook_id)
    if state.secret_digest != digest and state.hook_id == hook.id:
        updated = await _update(
            ctx,
            hook.id,
            WebHookUpdate(properties=WebHookRequestProperties(secret=SecretStr(_secret(ctx)))),
        )
        _remember(state, updated or hook, url, digest, reenable_tried=False)
        return HookCheck("secret-updated", state.status, state.hook_id)
    _remember(state, hook, url, digest, reenable_tried=False)
    return HookCheck("healthy" if state.healthy else "pending", state.status, state.hook_id)


async def _update(ctx: AppContext, hook_id: str, update: WebHookUpdate) -> WebHook | None:
    try:
        return await ctx.speech.webhooks.update_webhook(hook_id, update)
    except NotFoundError:
        return None


def _remember(
    state: HookState,
    hook: WebHook,
    url: str,
    digest: str,
    *,
    reenable_tried: bool,
    message: str | None = None,
) -> None:
    state.hook_id = hook.id
    state.status = str(hook.status) if hook.status is not None else "NotStarted"
    state.web_url = url
    state.secret_digest = digest
    state.reenable_tried = reenable_tried
    state.message = message


async def hooks_healthy(ctx: AppContext) -> bool:
    """True when completions are announced: a healthy hook, checked lately."""
    settings = ctx.settings
    if not settings.speech_webhooks:
        return False
    state = await ctx.ledger.get_hook()
    if not state.healthy or state.checked_at is None:
        return False
    # A hook not seen for three check intervals may have failed meanwhile: poll normally.
    fresh = dt.timedelta(seconds=3 * settings.webhook_check_seconds)
    return utcnow() - state.checked_at <= fresh


def job_id_of(payload: Any) -> str | None:
    """The transcription id of a ``transcriptionCompletion`` payload (the entity's ``self``)."""
    if not isinstance(payload, dict):
        return None
    self_url = payload.get("self")
    if not isinstance(self_url, str) or "/transcriptions/" not in self_url:
        return None
    tail = self_url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return tail or None


async def on_completion(ctx: AppContext, body: bytes) -> tuple[str | None, bool]:
    """A verified ``transcriptionCompletion`` delivery: (job id, whether it was made due)."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None, False
    job_id = job_id_of(payload)
    if job_id is None:
        return None, False
    hastened = await ctx.ledger.hasten_job(
        job_id, now=utcnow(), guard_seconds=ctx.settings.poll_min_interval_seconds
    )
    if hastened:
        _log.info("web hook: job %s ended; it is due now", job_id)
    return job_id, hastened
