"""Web hooks: the registrations behind ``/speechtotext/webhooks`` and their callbacks.

Behaviour from the spec's ``WebHooks_*`` descriptions, which Microsoft publishes as the
"Web Hooks" REST reference (https://learn.microsoft.com/rest/api/speechtotext/web-hooks/create,
.../web-hooks/update, .../web-hooks/ping, .../web-hooks/test):

* **Challenge.** A new hook is ``NotStarted`` and "will not be usable until a
  challenge/response is completed": soon after it is created the emulator POSTs to
  ``webUrl`` with query parameter ``validationToken=<random>``, header
  ``X-MicrosoftSpeechServices-Event: challenge`` and an empty body. A 200 answer whose body is
  exactly the token makes the hook ``Succeeded``; anything else makes it ``Failed`` with
  ``properties.error`` ``{"code": "ChallengeFailed", "message": "Challenge response payload
  doesn't match validation token. Expected: <token>, actual: <body>"}`` (the service's words,
  as customers quote them). POST, not GET, because Microsoft's receiver sample
  (Azure-Samples/cognitive-services-speech-sdk, samples/batch/csharp/webhookreceiver) takes
  the challenge on its POST trigger. An update that changes ``webUrl`` or ``events``, and any
  update of a ``Failed`` hook, challenges again.
* **Events.** Only ``Succeeded`` hooks receive events, one request per registered event type:
  ``transcriptionCreation``, ``transcriptionProcessing``, ``transcriptionCompletion`` (the job
  Succeeded or Failed) and ``transcriptionDeletion``, reported by ``jobs.py``. The body is the
  transcription as ``Transcriptions_Get`` returns it, rendered for the base URL and the
  ``apiVersion`` the hook was created with ("This defines the shape of the payload in the
  callbacks"). Other registrable events (datasets, models, evaluations, endpoints) never fire:
  the emulator has none of those entities.
* **Ping** posts the hook itself (the ``WebHooks_Get`` shape), event ``ping``. **Test** posts,
  for each registered transcription event, the last transcription that went through it; with
  none, the operation answers 204 and nothing is sent. Both wait for a pending challenge;
  events, in contrast, go only to hooks that are ``Succeeded`` when the event happens.
* **Format.** Every callback is ``POST webUrl`` with ``Content-Type: application/json`` (not on
  the empty-bodied challenge), ``X-MicrosoftSpeechServices-Event: <event>`` and, when the hook
  has a non-empty secret, ``X-MicrosoftSpeechServices-Signature: base64(HMAC-SHA256(key=secret
  as UTF-8, message=the exact body bytes))``. The challenge is signed too, over its empty body,
  as Microsoft's receiver sample verifies (pull request #785 of that repository).
* **Failures.** A callback that fails (connection error, timeout, non-2xx) is tried
  ``EMULATOR_WEBHOOK_DELIVERY_ATTEMPTS`` times in all, waiting ``EMULATOR_WEBHOOK_RETRY_SECONDS``
  before the first retry and twice as long before each further one; each try times out after
  ``EMULATOR_WEBHOOK_TIMEOUT_SECONDS``. After ``EMULATOR_WEBHOOK_FAILURES_TO_DISABLE``
  consecutive failed deliveries the hook becomes ``Failed`` (``properties.error.code``
  ``DeliveryFailed``) and gets nothing more, pings and tests included (they still answer
  202), until an update validates it again.
* **Secrets** are write-only: no response, document or log line contains one.

Callbacks run in asyncio tasks on the app's loop, one queue per hook so its callbacks arrive
in order; a job worker only queues them. ``webUrl`` may be plain HTTP or HTTPS; HTTPS trusts
certifi's roots plus ``EMULATOR_CA_BUNDLE``, ``REQUESTS_CA_BUNDLE`` and ``SSL_CERT_FILE``
when set (the offline stack points those at its own CA, see ``local/certs.py``).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import datetime as dt
import hashlib
import hmac
import itertools
import json
import logging
import os
import secrets
import ssl
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import certifi
import httpx

from local.emulator.clock import Clock, iso
from local.emulator.errors import ApiError, bad_request
from local.emulator.jobs import COMPLETED, CREATED, DELETED, PROCESSING, Job
from local.emulator.settings import EmulatorSettings
from local.emulator.stats import Stats
from local.emulator.storage import strip_query
from local.emulator.validation import check_custom_properties

_log = logging.getLogger(__name__)

EVENT_HEADER = "X-MicrosoftSpeechServices-Event"
SIGNATURE_HEADER = "X-MicrosoftSpeechServices-Signature"
CHALLENGE = "challenge"
PING = "ping"
#: The properties of the spec's ``WebHookEvents``, in its order.
EVENT_NAMES: tuple[str, ...] = (
    *(
        f"{entity}{step}"
        for entity in ("dataset", "model", "evaluation", "transcription", "endpoint")
        for step in ("Creation", "Processing", "Completion", "Deletion")
    ),
    PING,
    CHALLENGE,
)
#: The events the emulator raises itself (``jobs.py``), in the order a job goes through them.
TRANSCRIPTION_EVENTS = (CREATED, PROCESSING, COMPLETED, DELETED)
#: How much of a wrong challenge answer the error message quotes.
_QUOTED_BODY_CHARS = 256


# -- request bodies --------------------------------------------------------------------------


@dataclass(frozen=True)
class WebHookSpec:
    """A validated ``WebHooks_Create`` body."""

    display_name: str
    description: str | None
    web_url: str
    events: dict[str, bool]
    secret: str | None = field(repr=False)
    custom_properties: dict[str, str] | None


def _invalid(message: str, code: str = "InvalidParameterValue") -> ApiError:
    return bad_request(code, message)


def _text(body: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise _invalid(f"The property '{name}' is required.")
        return None
    if not isinstance(value, str):
        raise _invalid(f"The property '{name}' must be a string.")
    if required and not value.strip():
        raise _invalid(f"The property '{name}' must not be empty.")
    return value


def _web_url(value: Any) -> str:
    if value is None:
        raise _invalid("The property 'webUrl' is required.", "InvalidCallbackUri")
    ok = isinstance(value, str) and not any(c.isspace() for c in value)
    if ok:
        parts = urlsplit(value)
        ok = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    if not ok:
        raise _invalid("webUrl must be an absolute http or https URL.", "InvalidCallbackUri")
    return str(value)


def _events(value: Any, *, allow_null: bool = False) -> dict[str, bool | None]:
    if not isinstance(value, dict):
        raise _invalid("events must be an object of event names and booleans.")
    unknown = sorted(name for name in value if name not in EVENT_NAMES)
    if unknown:
        raise _invalid(
            f"Unknown web hook event(s): {', '.join(unknown)}. The events are "
            f"{', '.join(EVENT_NAMES)}.",
            "InvalidWebHookEventKind",
        )
    for name, flag in value.items():
        if not isinstance(flag, bool) and not (allow_null and flag is None):
            raise _invalid(f"events.{name} must be true or false.")
    return dict(value)


def _some_event(events: Mapping[str, bool]) -> None:
    if not any(events.values()):
        raise _invalid(
            "At least one event must be registered (set to true).", "InvalidWebHookEventKind"
        )


def _secret(properties: Any) -> tuple[bool, str | None]:
    """(whether ``properties.secret`` was given, its value; "" and null mean none)."""
    if properties is None:
        return False, None
    if not isinstance(properties, dict):
        raise _invalid("properties must be an object.")
    if "secret" not in properties:
        return False, None
    secret = properties["secret"]
    if secret is not None and not isinstance(secret, str):
        raise _invalid("properties.secret must be a string.")
    return True, secret or None


def parse_creation(body: Any) -> WebHookSpec:
    """Check a ``WebHooks_Create`` body like the service; 400 ``InvalidRequest`` if it is bad.

    Read-only and unknown members (``self``, ``status``, ``properties.apiVersion``, ...) are
    ignored, as ASP.NET's JSON binding ignores them.
    """
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object.", "InvalidRequestBodyFormat")
    display_name = _text(body, "displayName", required=True)
    assert display_name is not None  # required
    description = _text(body, "description", required=False)
    web_url = _web_url(body.get("webUrl"))
    if body.get("events") is None:
        raise _invalid("The property 'events' is required.")
    events = {name: bool(flag) for name, flag in _events(body["events"]).items()}
    _some_event(events)
    _, secret = _secret(body.get("properties"))
    return WebHookSpec(
        display_name=display_name,
        description=description,
        web_url=web_url,
        events=events,
        secret=secret,
        custom_properties=check_custom_properties(body.get("customProperties")),
    )


def parse_update(body: Any, *, merge_patch: bool) -> dict[str, Any]:
    """The changes of a ``WebHooks_Update`` body (``WebHookUpdate``).

    Members left out stay as they are. ``properties.secret`` set to ``""`` or ``null`` removes
    the secret ("future callbacks won't contain X-MicrosoftSpeechServices-Signature headers").
    With ``application/merge-patch+json`` (RFC 7396) ``events`` and ``customProperties`` are
    merged, ``null`` removing an entry; with ``application/json`` they replace the old ones.
    """
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object.", "InvalidRequestBodyFormat")
    changes: dict[str, Any] = {}
    if "displayName" in body:
        changes["displayName"] = _text(body, "displayName", required=True)
    if "description" in body:
        changes["description"] = _text(body, "description", required=False)
    if "webUrl" in body:
        changes["webUrl"] = _web_url(body["webUrl"])
    if "events" in body:
        if merge_patch and isinstance(body["events"], dict):
            changes["eventsPatch"] = _events(body["events"], allow_null=True)
        else:
            events = {k: bool(v) for k, v in _events(body["events"]).items()}
            _some_event(events)
            changes["events"] = events
    given, secret = _secret(body.get("properties"))
    if given:
        changes["secret"] = secret
    if "customProperties" in body:
        value = body["customProperties"]
        if merge_patch and isinstance(value, dict):
            changes["customPropertiesPatch"] = value
        else:
            changes["customProperties"] = check_custom_properties(value)
    return changes


# -- the registry ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Delivery:
    """One queued callback; ``payload`` is rendered when it is sent (None: the challenge)."""

    event: str
    generation: int
    payload: Callable[[], dict[str, Any]] | None


@dataclass(frozen=True)
class _Answer:
    """How the last try of a callback went."""

    ok: bool  # a 2xx answer
    status: int | None  # None: no answer (connection error, timeout)
    body: bytes
    problem: str  # "HTTP 500 Internal Server Error", "ConnectError", ...


@dataclass
class WebHook:
    """One registration and its state (the secret is never rendered or logged)."""

    id: str
    display_name: str
    description: str | None
    web_url: str
    events: dict[str, bool]
    secret: str | None = field(repr=False)
    custom_properties: dict[str, str] | None
    #: Where and in which API version it was created: the shape of its callbacks' payloads.
    base_url: str
    api_version: str
    created: dt.datetime
    last_action: dt.datetime
    status: str = "NotStarted"
    error: dict[str, str] | None = None
    #: Consecutive deliveries that failed all their attempts.
    failures: int = 0
    #: Bumped by each (re)validation; callbacks queued before it are dropped.
    generation: int = 0
    sequence: int = field(default_factory=itertools.count().__next__)
    pending: collections.deque[_Delivery] = field(default_factory=collections.deque, repr=False)
    sender: asyncio.Task[None] | None = field(default=None, repr=False)

    def registered(self, event: str) -> bool:
        """True if the hook asked for ``event``."""
        return self.events.get(event, False)

    def filter_item(self) -> dict[str, Any]:
        """The properties the web hooks' ``filter`` supports (spec: ``WebHooks_List``)."""
        return {
            "displayName": self.display_name,
            "description": self.description,
            "createdDateTime": self.created,
            "lastActionDateTime": self.last_action,
            "status": self.status,
            "webUrl": self.web_url,
        }

    def document(self, base_url: str, api_version: str) -> dict[str, Any]:
        """The ``WebHook`` response body (no secret: it is write-only)."""
        query = f"?api-version={api_version}"
        location = f"{base_url}/speechtotext/webhooks/{self.id}"
        body: dict[str, Any] = {"self": f"{location}{query}", "displayName": self.display_name}
        if self.description is not None:
            body["description"] = self.description
        if self.custom_properties:
            body["customProperties"] = dict(self.custom_properties)
        body["webUrl"] = self.web_url
        body["events"] = dict(self.events)
        body["createdDateTime"] = iso(self.created)
        body["lastActionDateTime"] = iso(self.last_action)
        body["links"] = {"ping": f"{location}:ping{query}", "test": f"{location}:test{query}"}
        properties: dict[str, Any] = {"apiVersion": self.api_version}
        if self.error is not None:
            properties["error"] = dict(self.error)
        body["properties"] = properties
        body["status"] = self.status
        return body


def sign(secret: str, body: bytes) -> str:
    """``X-MicrosoftSpeechServices-Signature``: base64 of HMAC-SHA256 of ``body`` keyed by
    ``secret`` (UTF-8)."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def payload_bytes(document: Mapping[str, Any]) -> bytes:
    """A callback body: compact UTF-8 JSON, as the API's own responses are serialized."""
    return json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode(
        "utf-8"
    )


def trust_store(ca_bundle: Path | None, environ: Mapping[str, str] | None = None) -> ssl.SSLContext:
    """What HTTPS callbacks trust: certifi's roots (httpx's default) plus ``ca_bundle``
    (``EMULATOR_CA_BUNDLE``), ``REQUESTS_CA_BUNDLE`` and ``SSL_CERT_FILE`` when set.

    A receiver on the offline stack presents a certificate of the stack's own CA, which only
    those files carry; a file that cannot be loaded is skipped with a warning.
    """
    environ = os.environ if environ is None else environ
    context = ssl.create_default_context(cafile=certifi.where())
    sources = (
        ("EMULATOR_CA_BUNDLE", str(ca_bundle) if ca_bundle is not None else ""),
        ("REQUESTS_CA_BUNDLE", environ.get("REQUESTS_CA_BUNDLE", "")),
        ("SSL_CERT_FILE", environ.get("SSL_CERT_FILE", "")),
    )
    for name, path in sources:
        if not path.strip():
            continue
        try:
            context.load_verify_locations(cafile=path)
        except (OSError, ssl.SSLError) as exc:
            _log.warning("web hooks do not trust %s=%s: %s", name, path, exc)
    return context


def _constant(document: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    return lambda: document


class WebHooks:
    """Every web hook: the store behind the routes, the challenge and the callbacks.

    Also the :class:`~local.emulator.jobs.JobListener` of the job manager. Methods that queue
    callbacks must run on the app's event loop (handlers and job workers do).
    """

    def __init__(
        self,
        *,
        clock: Clock,
        stats: Stats,
        attempts: int,
        retry_seconds: float,
        timeout_seconds: float,
        failures_to_disable: int,
        ca_bundle: Path | None,
    ) -> None:
        self._clock = clock
        self._stats = stats
        self._attempts = attempts
        self._retry_seconds = retry_seconds
        self._timeout = timeout_seconds
        self._failures_to_disable = failures_to_disable
        self._ca_bundle = ca_bundle
        self._hooks: dict[str, WebHook] = {}
        #: The last transcription per event, for ``WebHooks_Test``.
        self._last: dict[str, Job] = {}
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def from_settings(cls, settings: EmulatorSettings, *, clock: Clock, stats: Stats) -> WebHooks:
        """The registry configured by the ``EMULATOR_WEBHOOK_*`` settings."""
        return cls(
            clock=clock,
            stats=stats,
            attempts=settings.webhook_delivery_attempts,
            retry_seconds=settings.webhook_retry_seconds,
            timeout_seconds=settings.webhook_timeout_seconds,
            failures_to_disable=settings.webhook_failures_to_disable,
            ca_bundle=settings.ca_bundle,
        )

    # -- store ---------------------------------------------------------------------------

    def create(self, spec: WebHookSpec, *, base_url: str, api_version: str) -> WebHook:
        """Register a hook (``NotStarted``) and queue its challenge."""
        now = self._clock.now()
        hook = WebHook(
            id=str(uuid.uuid4()),
            display_name=spec.display_name,
            description=spec.description,
            web_url=spec.web_url,
            events=dict(spec.events),
            secret=spec.secret,
            custom_properties=spec.custom_properties,
            base_url=base_url,
            api_version=api_version,
            created=now,
            last_action=now,
        )
        self._hooks[hook.id] = hook
        self._validate(hook)
        return hook

    def get(self, hook_id: str) -> WebHook | None:
        """The hook with this id (any case), or None."""
        return self._hooks.get(hook_id.lower())

    def all(self) -> list[WebHook]:
        """Every hook, oldest first."""
        return sorted(self._hooks.values(), key=lambda h: (h.created, h.sequence))

    def update(self, hook: WebHook, changes: dict[str, Any]) -> None:
        """Apply a checked ``WebHooks_Update`` (see :func:`parse_update`).

        A new ``webUrl`` or other ``events`` re-run the challenge, and so does any update of a
        ``Failed`` hook: that is how a disabled hook comes back.
        """
        events = dict(hook.events)
        if "events" in changes:
            events = dict(changes["events"])
        if "eventsPatch" in changes:
            for name, flag in changes["eventsPatch"].items():
                if flag is None:
                    events.pop(name, None)
                else:
                    events[name] = flag
            _some_event(events)
        custom = hook.custom_properties
        if "customProperties" in changes:
            custom = changes["customProperties"]
        if "customPropertiesPatch" in changes:
            merged = dict(custom or {})
            for key, value in changes["customPropertiesPatch"].items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            custom = check_custom_properties(merged) or None
        # Everything is checked before anything changes: a refused update changes nothing.
        revalidate = hook.status == "Failed" or events != hook.events
        if "webUrl" in changes and changes["webUrl"] != hook.web_url:
            hook.web_url = changes["webUrl"]
            revalidate = True
        hook.events = events
        hook.custom_properties = custom
        if "displayName" in changes:
            hook.display_name = changes["displayName"]
        if "description" in changes:
            hook.description = changes["description"]
        if "secret" in changes:
            hook.secret = changes["secret"]
        if revalidate:
            self._validate(hook)

    def delete(self, hook: WebHook) -> None:
        """Forget a hook; callbacks still queued for it are dropped."""
        if self._hooks.get(hook.id) is hook:
            del self._hooks[hook.id]
        self._stop(hook)

    def clear(self) -> int:
        """Delete every hook and forget the last entities (``POST /admin/reset``)."""
        hooks = list(self._hooks.values())
        for hook in hooks:
            self.delete(hook)
        self._last.clear()
        return len(hooks)

    def forget_entities(self) -> None:
        """Forget the transcriptions ``WebHooks_Test`` would send (the jobs are gone)."""
        self._last.clear()

    async def aclose(self) -> None:
        """Stop every sender and close the HTTP client."""
        senders = [h.sender for h in self._hooks.values() if h.sender is not None]
        for hook in self._hooks.values():
            self._stop(hook)
        for task in senders:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- what triggers callbacks -----------------------------------------------------------

    def ping(self, hook: WebHook) -> None:
        """Queue a ``ping`` with the hook itself as payload (sent once the hook is valid)."""
        if hook.status != "Failed":
            self._enqueue(
                hook,
                _Delivery(
                    PING, hook.generation, lambda: hook.document(hook.base_url, hook.api_version)
                ),
            )

    def test(self, hook: WebHook) -> bool:
        """Queue, per registered transcription event, the last transcription it concerned.

        False when there is none for any of them (``WebHooks_Test`` answers 204).
        """
        entities = [
            (event, self._last[event])
            for event in TRANSCRIPTION_EVENTS
            if hook.registered(event) and event in self._last
        ]
        if hook.status != "Failed":
            for event, job in entities:
                self._enqueue(hook, _Delivery(event, hook.generation, self._render(hook, job)))
        return bool(entities)

    def job_event(self, event: str, job: Job) -> None:
        """A transcription went through ``event``: queue it for every valid hook that asked.

        The payload is rendered now, so it shows the job as it was at that moment.
        """
        self._last[event] = job
        for hook in list(self._hooks.values()):
            if hook.status == "Succeeded" and hook.registered(event):
                document = job.document(hook.base_url, hook.api_version)
                self._enqueue(hook, _Delivery(event, hook.generation, _constant(document)))

    @staticmethod
    def _render(hook: WebHook, job: Job) -> Callable[[], dict[str, Any]]:
        return lambda: job.document(hook.base_url, hook.api_version)

    # -- sending -------------------------------------------------------------------------

    def _validate(self, hook: WebHook) -> None:
        hook.generation += 1
        hook.status = "NotStarted"
        hook.error = None
        hook.failures = 0
        hook.last_action = self._clock.now()
        self._enqueue(hook, _Delivery(CHALLENGE, hook.generation, None))

    def _stop(self, hook: WebHook) -> None:
        hook.pending.clear()
        if hook.sender is not None:
            hook.sender.cancel()
            hook.sender = None

    def _live(self, hook: WebHook, generation: int) -> bool:
        """False once the hook was deleted or validated anew since ``generation``."""
        return self._hooks.get(hook.id) is hook and hook.generation == generation

    def _enqueue(self, hook: WebHook, delivery: _Delivery) -> None:
        hook.pending.append(delivery)
        if hook.sender is not None and not hook.sender.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            _log.warning("web hook %s: no event loop, %s not sent", hook.id, delivery.event)
            hook.pending.clear()
            return
        hook.sender = loop.create_task(self._drain(hook), name=f"speech-emulator-hook-{hook.id}")

    async def _drain(self, hook: WebHook) -> None:
        while hook.pending:
            delivery = hook.pending.popleft()
            if not self._live(hook, delivery.generation):
                continue
            try:
                if delivery.payload is None:
                    await self._challenge(hook, delivery.generation)
                elif hook.status == "Succeeded":
                    await self._deliver(hook, delivery, delivery.payload)
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.exception("web hook %s: sending %s failed", hook.id, delivery.event)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # Redirects are not followed: the registered URL is the one that must answer.
            self._client = httpx.AsyncClient(
                verify=trust_store(self._ca_bundle),
                timeout=self._timeout,
                follow_redirects=False,
            )
        return self._client

    async def _post(
        self,
        hook: WebHook,
        generation: int,
        event: str,
        body: bytes,
        params: dict[str, str] | None = None,
    ) -> _Answer:
        """POST ``body`` with ``event``'s headers, retrying failures with growing pauses."""
        headers = {EVENT_HEADER: event}
        if body:
            headers["Content-Type"] = "application/json"
        if hook.secret:
            headers[SIGNATURE_HEADER] = sign(hook.secret, body)
        # Merged into the URL's own query (httpx's params= would replace it): receivers such
        # as Azure Functions carry their key there.
        url = httpx.URL(hook.web_url).copy_merge_params(params or {})
        answer = _Answer(False, None, b"", "not sent")
        for attempt in range(self._attempts):
            if attempt:
                await asyncio.sleep(self._retry_seconds * 2 ** (attempt - 1))
                if not self._live(hook, generation):
                    break
            try:
                response = await self._http().post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                answer = _Answer(False, None, b"", type(exc).__name__)
                continue
            status = response.status_code
            ok = 200 <= status < 300
            problem = f"HTTP {status} {response.reason_phrase}"
            answer = _Answer(ok, status, response.content, problem)
            if ok:
                break
        return answer

    async def _challenge(self, hook: WebHook, generation: int) -> None:
        # 32 hex digits, the form of the tokens the service's error messages show.
        token = secrets.token_hex(16)
        answer = await self._post(hook, generation, CHALLENGE, b"", {"validationToken": token})
        if not self._live(hook, generation):
            return
        passed = answer.status == 200 and answer.body == token.encode("ascii")
        self._stats.count_webhook_challenge(passed)
        hook.last_action = self._clock.now()
        if passed:
            hook.status = "Succeeded"
            _log.info("web hook %s validated", hook.id)
            return
        hook.status = "Failed"
        hook.error = {"code": "ChallengeFailed", "message": _challenge_message(hook, token, answer)}
        _log.warning("web hook %s failed its challenge (%s)", hook.id, answer.problem)

    async def _deliver(
        self, hook: WebHook, delivery: _Delivery, payload: Callable[[], dict[str, Any]]
    ) -> None:
        answer = await self._post(
            hook, delivery.generation, delivery.event, payload_bytes(payload())
        )
        self._stats.count_webhook_delivery(delivery.event, answer.ok)
        if not self._live(hook, delivery.generation):
            return
        if answer.ok:
            hook.failures = 0
            return
        hook.failures += 1
        shown = strip_query(hook.web_url)
        _log.warning(
            "web hook %s: %s to %s failed after %d attempt(s): %s",
            hook.id,
            delivery.event,
            shown,
            self._attempts,
            answer.problem,
        )
        if hook.failures >= self._failures_to_disable:
            hook.status = "Failed"
            hook.last_action = self._clock.now()
            hook.error = {
                "code": "DeliveryFailed",
                "message": f"The web hook was disabled after {hook.failures} consecutive failed "
                f"deliveries; the last one to {shown} failed: {answer.problem}. Update the web "
                "hook to validate it again.",
            }


def _challenge_message(hook: WebHook, token: str, answer: _Answer) -> str:
    if answer.status is None:
        return (
            f"The challenge request to {strip_query(hook.web_url)} failed: {answer.problem}. "
            f"Expected the validation token {token} in a 200 response."
        )
    actual = answer.body.decode("utf-8", errors="replace")
    if len(actual) > _QUOTED_BODY_CHARS:
        actual = actual[:_QUOTED_BODY_CHARS] + "..."
    message = (
        "Challenge response payload doesn't match validation token. "
        f"Expected: {token}, actual: {actual}"
    )
    if answer.status != 200:
        message += f" (HTTP {answer.status})"
    return message
