"""What every request goes through, in the order a real front end applies it.

1. authentication (401/403, ``errors.front_end_error`` bodies);
2. on the batch surface (web hooks included): the quota (429 with ``Retry-After``), then
   random 5xx faults; on fast transcription: its own quota (``fast_quota_*``, a separate
   window per caller), then forced failures (``fast_fail_status``, see ``faults.py``);
3. added latency (any API request);
4. ``api-version`` (REST API only): 2024-11-15 and 2025-10-15, else 400;
5. the handler, whose :class:`~local.emulator.errors.ApiError` becomes the response;
6. ``apim-request-id`` (and ``api-supported-versions`` on the REST API, as the service's
   ASP.NET API versioning reports them) on every answer, then the stats count it.

Handlers are ``async def handler(ctx: Context) -> Response`` wrapped by :func:`endpoint`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response

from local.emulator.auth import Authenticator, Principal, Surface
from local.emulator.catalog import Catalog
from local.emulator.clock import Clock
from local.emulator.errors import ApiError, bad_request, spec_error
from local.emulator.faults import ErrorInjector, FaultState, QuotaLimiter
from local.emulator.jobs import JobManager
from local.emulator.recognition import Recognizer
from local.emulator.settings import EmulatorSettings
from local.emulator.stats import Stats
from local.emulator.storage import BlobTransfer, ResultStore, UrlSigner
from local.emulator.validation import SubmissionValidator
from local.emulator.webhooks import WebHooks

_log = logging.getLogger("local.emulator")

API_VERSIONS = ("2024-11-15", "2025-10-15")
SUPPORTED_VERSIONS_HEADER = ", ".join(API_VERSIONS)
#: 1000 content URLs with long SAS tokens fit several times over.
MAX_JSON_BYTES = 4 * 1024 * 1024
DEFAULT_TOP = 100
MAX_TOP = 100


class Kind(Enum):
    """Which surface an operation belongs to: decides auth, quota, faults and versioning."""

    BATCH = "batch"  # /speechtotext/... except fast transcription: quota + 5xx faults
    FAST = "fast"  # /speechtotext/transcriptions:transcribe: fast quota + forced failures
    SHORT_AUDIO = "short-audio"
    STS = "sts"  # issueToken: checks the key itself
    RESULTS = "results"  # result downloads: the signature is the credential


@dataclass
class Emulator:
    """Everything the handlers share; one per app."""

    settings: EmulatorSettings
    clock: Clock
    auth: Authenticator
    catalog: Catalog
    validator: SubmissionValidator
    jobs: JobManager
    results: ResultStore
    transfer: BlobTransfer
    signer: UrlSigner
    recognizer: Recognizer
    stats: Stats
    quota: QuotaLimiter
    injector: ErrorInjector
    faults: FaultState
    webhooks: WebHooks


@dataclass
class Context:
    """One request as a handler sees it."""

    request: Request
    emulator: Emulator
    principal: Principal | None
    api_version: str

    @property
    def base_url(self) -> str:
        """``EMULATOR_PUBLIC_URL`` or the request's own scheme and host."""
        configured = self.emulator.settings.public_url
        return configured or str(self.request.base_url).rstrip("/")

    def query(self, name: str) -> str | None:
        """A query parameter, or None when absent."""
        return self.request.query_params.get(name)

    async def json_body(self, *, media_types: tuple[str, ...] = ("application/json",)) -> Any:
        """The JSON body; 415 for another media type, 400 InvalidRequestBodyFormat if invalid."""
        media = self.request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media not in media_types:
            raise spec_error(
                415,
                "UnsupportedMediaType",
                f"The media type '{media or 'none'}' is not supported; use "
                f"{' or '.join(media_types)}.",
            )
        raw = bytearray()
        async for chunk in self.request.stream():
            raw += chunk
            if len(raw) > MAX_JSON_BYTES:
                raise bad_request(
                    "InvalidRequestBodyFormat",
                    f"The request body is larger than {MAX_JSON_BYTES} bytes.",
                )
        try:
            return json.loads(raw)
        except ValueError:
            raise bad_request(
                "InvalidRequestBodyFormat", "The request body is not valid JSON."
            ) from None


Handler = Callable[[Context], Awaitable[Response]]


def _version_problem(request: Request) -> ApiError | None:
    versions = request.query_params.getlist("api-version")
    if not versions:
        return bad_request(
            "InvalidParameterValue",
            "An API version is required, but was not specified. Supported versions: "
            f"{SUPPORTED_VERSIONS_HEADER}.",
        )
    if len(versions) > 1 or versions[0] not in API_VERSIONS:
        return bad_request(
            "InvalidParameterValue",
            f"The HTTP resource that matches the request URI does not support the API version "
            f"'{versions[-1]}'. Supported versions: {SUPPORTED_VERSIONS_HEADER}.",
        )
    return None


async def _guarded(
    ctx: Context, kind: Kind, handler: Handler, headers: Mapping[str, str]
) -> Response:
    emulator = ctx.emulator
    auth = emulator.auth
    if kind in (Kind.BATCH, Kind.FAST):
        ctx.principal = auth.authenticate(headers, Surface.REST)
    elif kind is Kind.SHORT_AUDIO:
        ctx.principal = auth.authenticate(headers, Surface.SHORT_AUDIO)
    faults = emulator.faults.config
    if kind is Kind.BATCH:
        assert ctx.principal is not None  # authenticated above
        if faults.quota_enabled:
            try:
                emulator.quota.check(
                    ctx.principal.bucket, faults.quota_requests, faults.quota_window_seconds
                )
            except ApiError:
                emulator.stats.count_fault("quota")
                raise
        try:
            emulator.injector.maybe_fail(faults.error_rate)
        except ApiError:
            emulator.stats.count_fault("error")
            raise
    elif kind is Kind.FAST:
        assert ctx.principal is not None  # authenticated above
        if faults.fast_quota_enabled:
            try:
                # A bucket of its own: Microsoft counts fast transcription separately from
                # the batch REST quota ("Speech service quotas and limits").
                emulator.quota.check(
                    f"fast:{ctx.principal.bucket}",
                    faults.fast_quota_requests,
                    faults.fast_quota_window_seconds,
                )
            except ApiError:
                emulator.stats.count_fault("fast_quota")
                raise
        forced = emulator.faults.fast_failure()
        if forced is not None:
            emulator.stats.count_fault("fast_forced")
            raise forced
    if faults.latency_ms and kind is not Kind.RESULTS:
        await asyncio.sleep(faults.latency_ms / 1000)
    if kind in (Kind.BATCH, Kind.FAST):
        problem = _version_problem(ctx.request)
        if problem is not None:
            raise problem
        ctx.api_version = ctx.request.query_params["api-version"]
    return await handler(ctx)


def endpoint(operation: str, kind: Kind) -> Callable[[Handler], Callable[[Request], Any]]:
    """Wrap ``handler`` as a Starlette endpoint for ``operation`` (an operationId)."""

    def wrap(handler: Handler) -> Callable[[Request], Any]:
        async def route(request: Request) -> Response:
            emulator: Emulator = request.app.state.emulator
            emulator.jobs.ensure_started()
            ctx = Context(request, emulator, None, API_VERSIONS[0])
            headers = {k.lower(): v for k, v in request.headers.items()}
            try:
                response = await _guarded(ctx, kind, handler, headers)
            except ApiError as error:
                response = error.response()
            except Exception:
                _log.exception("%s failed", operation)
                response = spec_error(
                    500, "InternalServerError", "An internal error occurred."
                ).response()
            response.headers["apim-request-id"] = str(uuid.uuid4())
            if kind in (Kind.BATCH, Kind.FAST):
                response.headers["api-supported-versions"] = SUPPORTED_VERSIONS_HEADER
            emulator.stats.count_request(operation, response.status_code)
            # The path only: queries may hold SAS signatures, headers keys and tokens.
            _log.info(
                "%s %s -> %d (%s)",
                request.method,
                request.url.path,
                response.status_code,
                operation,
            )
            return response

        route.__name__ = operation
        route.__doc__ = handler.__doc__
        return route

    return wrap


def paging(ctx: Context) -> tuple[int, int]:
    """``skip`` (default 0) and ``top`` (default and maximum 100) of a list request."""
    values = []
    for name, default in (("skip", 0), ("top", DEFAULT_TOP)):
        raw = ctx.query(name)
        if raw is None:
            values.append(default)
            continue
        try:
            values.append(int(raw))
        except ValueError:
            raise bad_request("InvalidParameterValue", f"{name} must be an integer.") from None
    skip, top = values
    if skip < 0 or not 1 <= top <= MAX_TOP:
        raise bad_request(
            "UnsupportedPagination",
            f"skip must be 0 or more and top from 1 to {MAX_TOP}.",
        )
    return skip, top


def paginated(
    ctx: Context,
    items: list[Any],
    render: Callable[[Any], dict[str, Any]],
    *,
    extra: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], list[Any]]:
    """``{"values": [...], "@nextLink": ...}`` for one page of ``items`` (already filtered),
    and the items on that page.

    ``@nextLink`` is absolute, keeps the filter and api-version, and is left out on the
    last page (the spec types it as a string, so it is never ``null``).
    """
    skip, top = paging(ctx)
    page = items[skip : skip + top]
    body: dict[str, Any] = {"values": [render(item) for item in page]}
    if skip + top < len(items):
        params: dict[str, str] = {"skip": str(skip + top), "top": str(top)}
        filter_text = ctx.query("filter")
        if filter_text:
            params["filter"] = filter_text
        params.update(extra or {})
        params["api-version"] = ctx.api_version
        query = urlencode(params, quote_via=quote)
        body["@nextLink"] = f"{ctx.base_url}{ctx.request.url.path}?{query}"
    return body, page
