"""The Speech-to-Text emulator as an ASGI app: ``uvicorn --factory local.emulator.app:create_app``.

Routes (see the ``routes_*`` modules):

* REST API ``/speechtotext/...`` (api-version 2024-11-15 or 2025-10-15): transcriptions
  (submit, list, get, update, delete, files, locales), models (base, custom), web hooks
  (create, list, get, update, delete, ping, test; callbacks to the registered URLs) and fast
  transcription (``transcriptions:transcribe``);
* short audio ``/speech/recognition/<mode>/cognitiveservices/v1`` (also under ``/stt``) and
  ``/sts/v1.0/issueToken``;
* result downloads ``/results/{id}/{fileId}`` (signed URLs handed out in ``contentUrl``);
* ``/admin/...`` (loopback only) and ``/health``.

Settings come from ``EMULATOR_*`` variables (``settings.py``); a bad value stops start-up
with a message naming the variable.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from local.emulator import (
    routes_admin,
    routes_batch,
    routes_fast,
    routes_models,
    routes_short,
    routes_webhooks,
)
from local.emulator.auth import Authenticator
from local.emulator.catalog import Catalog, load_custom_models
from local.emulator.clock import Clock, SystemClock
from local.emulator.errors import front_end_error, spec_error
from local.emulator.faults import ErrorInjector, FaultConfig, FaultState, QuotaLimiter
from local.emulator.jobs import JobManager
from local.emulator.pipeline import Emulator
from local.emulator.recognition import Recognizer
from local.emulator.settings import EmulatorSettings, load_settings
from local.emulator.stats import Stats
from local.emulator.storage import BlobTransfer, ResultStore, UrlSigner
from local.emulator.validation import SubmissionValidator
from local.emulator.webhooks import WebHooks

_log = logging.getLogger("local.emulator")


def build_emulator(settings: EmulatorSettings, clock: Clock) -> Emulator:
    """Wire the emulator's parts together (no I/O besides reading configured files)."""
    stats = Stats()
    results = ResultStore(settings.state_dir)
    transfer = BlobTransfer(settings.ca_bundle)
    recognizer = Recognizer(settings.engine)
    catalog = Catalog(load_custom_models(settings.custom_models))
    faults = FaultState(FaultConfig.from_settings(settings))
    webhooks = WebHooks.from_settings(settings, clock=clock, stats=stats)
    jobs = JobManager(
        clock=clock,
        results=results,
        transfer=transfer,
        recognizer=recognizer,
        stats=stats,
        faults=faults,
        workers=settings.workers,
        max_audio_seconds=settings.max_audio_seconds,
        sweep_interval_seconds=settings.sweep_interval_seconds,
        listener=webhooks,
    )
    return Emulator(
        settings=settings,
        clock=clock,
        auth=Authenticator(
            keys=settings.keys,
            clock=clock,
            public_key_path=settings.jwt_public_key,
            issuer=settings.jwt_issuer,
            audiences=settings.jwt_audiences,
            resource_id=settings.resource_id,
        ),
        catalog=catalog,
        validator=SubmissionValidator(catalog),
        jobs=jobs,
        results=results,
        transfer=transfer,
        signer=UrlSigner(clock),
        recognizer=recognizer,
        stats=stats,
        quota=QuotaLimiter(clock),
        injector=ErrorInjector(),
        faults=faults,
        webhooks=webhooks,
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    """Router 404/405 in the shape of the surface the path belongs to."""
    assert isinstance(exc, HTTPException)  # registered for HTTPException only
    headers = dict(exc.headers or {})
    if request.url.path.startswith("/speechtotext"):
        code = "NotFound" if exc.status_code == 404 else "NotAllowed"
        error = spec_error(exc.status_code, code, str(exc.detail), headers=headers)
    else:
        error = front_end_error(
            exc.status_code, str(exc.status_code), str(exc.detail), headers=headers
        )
    return error.response()


def create_app(
    settings: EmulatorSettings | None = None, *, clock: Clock | None = None
) -> Starlette:
    """The emulator app; without arguments, settings come from the environment.

    ``clock`` lets tests move time (token and SAS expiry, timeToLiveHours, quota windows).
    """
    settings = settings or load_settings()
    emulator = build_emulator(settings, clock or SystemClock())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        emulator.jobs.ensure_started()
        _log.info("speech emulator ready (engine %s)", settings.engine)
        try:
            yield
        finally:
            await emulator.jobs.aclose()
            await emulator.webhooks.aclose()
            await emulator.transfer.aclose()

    app = Starlette(
        routes=[
            *routes_batch.routes(),
            *routes_fast.routes(),
            *routes_models.routes(),
            *routes_webhooks.routes(),
            *routes_short.routes(),
            *routes_admin.routes(),
        ],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.emulator = emulator
    return app
