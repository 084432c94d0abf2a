"""Web hooks: have the service call back on events instead of polling it.

After :meth:`WebHooksClient.create_webhook` the hook is not used until its URL passes the
service's challenge: a POST with event ``challenge`` and a ``validationToken`` query
parameter, answered with 200 and that token as the body. Callbacks carry the event in
``X-MicrosoftSpeechServices-Event`` and, when the hook has a secret, an HMAC signature in
``X-MicrosoftSpeechServices-Signature`` (:mod:`shared.speech.webhook_signature` checks it).
"""

from __future__ import annotations

from typing import Any

from shared.redact import register_secret
from shared.speech._client import AsyncPager, BaseSpeechClient, check_id, check_paging
from shared.speech.errors import SpeechError
from shared.speech.models import (
    PaginatedWebHooks,
    WebHook,
    WebHookRequest,
    WebHookRequestProperties,
    WebHookUpdate,
)
from shared.speech.pipeline import TimeoutArg
from shared.speech.retry import RetryPolicy, parse_retry_after


def _register_secret(properties: WebHookRequestProperties | None) -> None:
    # A service error that quotes the body (400 on a bad field) would otherwise carry the
    # secret into the exception message and the log line; registered, it is scrubbed.
    if properties is not None and properties.secret is not None:
        register_secret(properties.secret.get_secret_value())


class WebHooksClient(BaseSpeechClient):
    """The ``/speechtotext/webhooks`` surface of one Speech resource."""

    def list_webhooks(
        self,
        *,
        filter: str | None = None,
        top: int | None = None,
        skip: int | None = None,
        timeout: TimeoutArg = None,
        retry: RetryPolicy | None = None,
    ) -> AsyncPager[WebHook]:
        """All web hooks of the resource, optionally filtered.

        ``filter`` is the spec's OData subset over displayName, description, createdDateTime,
        lastActionDateTime, status and webUrl, e.g. ``f"webUrl eq {odata_quote(url)}"``.
        """
        check_paging(top, skip)
        return self._paged(
            "/webhooks",
            self._params(filter=filter, top=top, skip=skip),
            PaginatedWebHooks,
            timeout=timeout,
            retry=retry,
        )

    async def get_webhook(
        self, webhook_id: str, *, timeout: TimeoutArg = None, retry: RetryPolicy | None = None
    ) -> WebHook:
        """The web hook's current registration; ``.retry_after`` holds the service's hint."""
        hook_id = check_id(webhook_id, what="webhook_id")
        response = await self._send("GET", f"/webhooks/{hook_id}", timeout=timeout, retry=retry)
        hook = WebHook.model_validate(response.json())
        hook._retry_after = parse_retry_after(response.headers)
        return hook

    async def create_webhook(
        self,
        webhook: WebHookRequest,
        *,
        timeout: TimeoutArg = None,
        retry: RetryPolicy | None = None,
    ) -> WebHook:
        """Register a web hook and return it as the service created it.

        Creating is not idempotent, so this method re-sends only where the service cannot
        have created the hook (no connection, or 429/503). When it raises a timeout or
        connection error with ``request_sent=True``, the hook may exist: look it up with
        :meth:`list_webhooks` (``filter=f"displayName eq {odata_quote(name)}"``) before
        creating it again, or the URL will receive every event twice.
        """
        if not isinstance(webhook, WebHookRequest):
            raise TypeError("webhook must be a WebHookRequest")
        _register_secret(webhook.properties)
        response = await self._send(
            "POST",
            "/webhooks",
            json=webhook.to_body(),
            idempotent=False,
            timeout=timeout,
            retry=retry,
        )
        body: dict[str, Any] = response.json() if response.content else {}
        if not body.get("self") and response.headers.get("location"):
            body["self"] = response.headers["location"]
        hook = WebHook.model_validate(body)
        if not hook.id:
            raise SpeechError(
                "the service created the web hook but returned no id (no self/Location)"
            )
        return hook

    async def update_webhook(
        self,
        webhook_id: str,
        update: WebHookUpdate,
        *,
        timeout: TimeoutArg = None,
        retry: RetryPolicy | None = None,
    ) -> WebHook:
        """Change a web hook; fields left unset in ``update`` keep their value.

        A new ``web_url`` stops callbacks until it passes the challenge again; a secret of
        ``""`` makes future callbacks unsigned.
        """
        hook_id = check_id(webhook_id, what="webhook_id")
        if not isinstance(update, WebHookUpdate):
            raise TypeError("update must be a WebHookUpdate")
        body = update.to_body()
        if not body:
            raise ValueError(
                "update must set at least one of displayName, description, webUrl, events, "
                "customProperties, properties.secret"
            )
        _register_secret(update.properties)
        # Setting the same fields twice leaves the same registration: safe to re-send.
        response = await self._send(
            "PATCH", f"/webhooks/{hook_id}", json=body, timeout=timeout, retry=retry
        )
        return WebHook.model_validate(response.json())

    async def delete_webhook(
        self,
        webhook_id: str,
        *,
        missing_ok: bool = False,
        timeout: TimeoutArg = None,
        retry: RetryPolicy | None = None,
    ) -> bool:
        """Delete a web hook; no more callbacks go to its URL.

        Returns True when this call deleted it; with ``missing_ok`` a hook that is already
        gone returns False instead of raising :class:`NotFoundError`.
        """
        hook_id = check_id(webhook_id, what="webhook_id")
        return await self._delete(
            f"/webhooks/{hook_id}", missing_ok=missing_ok, timeout=timeout, retry=retry
        )

    async def ping_webhook(
        self, webhook_id: str, *, timeout: TimeoutArg = None, retry: RetryPolicy | None = None
    ) -> None:
        """Have the service POST a ``ping`` event to the hook's URL (answered with 202).

        The callback carries the hook itself as its body, signed when the hook has a secret.
        """
        hook_id = check_id(webhook_id, what="webhook_id")
        # A second ping after an ambiguous failure only repeats a no-op event: safe to re-send.
        await self._send("POST", f"/webhooks/{hook_id}:ping", timeout=timeout, retry=retry)

    async def test_webhook(
        self, webhook_id: str, *, timeout: TimeoutArg = None, retry: RetryPolicy | None = None
    ) -> bool:
        """Have the service send one test callback per registered event type.

        Each test payload is the last entity that would have triggered that event. Returns
        True when the service sent them (202), False when no entity exists for any of the
        hook's events, so nothing was sent (204).
        """
        hook_id = check_id(webhook_id, what="webhook_id")
        # Not idempotent: test callbacks carry real entities (a finished transcription), and
        # a receiver may act on one; re-sending after the service saw the request would
        # deliver them twice. Retried only where the service provably did not process it.
        response = await self._send(
            "POST",
            f"/webhooks/{hook_id}:test",
            idempotent=False,
            timeout=timeout,
            retry=retry,
        )
        return response.status_code != 204
