"""Admin API (loopback callers only, no auth) and the health check.

``GET /admin/stats``     counters (see ``stats.Stats.snapshot``), with ``fileFailuresInjected``
                         (failures ``fail_files`` injected, per blob path),
                         ``submittedDisplayNames`` (jobs created per displayName),
                         ``webhookDeliveries`` (per event: delivered, failed) and
                         ``webhookChallenges`` (succeeded, failed)
``GET /admin/faults``    fault settings in force
``PUT /admin/faults``    change some of them: ``{"quota_enabled": false, "error_rate": 0.2,
                         "latency_ms": 50, "job_start_delay_seconds": 2,
                         "fail_jobs": "broken-*", "quota_requests": 100,
                         "quota_window_seconds": 10, "fail_files": "*/chaos/*.wav",
                         "fail_files_kind": "Transient", "fail_files_times": 2,
                         "fast_quota_enabled": true, "fast_quota_requests": 600,
                         "fast_quota_window_seconds": 60, "fast_fail_status": 503,
                         "fast_fail_times": 2}``
``POST /admin/reset``    stats, faults, per-file and forced fast failure counts and quota
                         windows back to the start-up state, every web hook deleted;
                         ``?jobs=true`` also deletes every transcription
``POST /admin/jobs:forget``  drop every transcription (queued, running, finished) and its
                         files, as a restart does; stats, faults and web hooks stay (but
                         ``WebHooks_Test`` has no last transcription to send). ``{"forgotten": n}``
``POST /admin/sweep``    run the timeToLiveHours sweep now (returns how many were deleted)
``GET /health``          ``{"status": "ok", "engine": "<name>"}``
"""

from __future__ import annotations

import ipaddress
import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.emulator.pipeline import Emulator


def _emulator(request: Request) -> Emulator:
    emulator: Emulator = request.app.state.emulator
    emulator.jobs.ensure_started()
    return emulator


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _refused() -> Response:
    return JSONResponse(
        {"error": {"code": "Forbidden", "message": "The admin API answers loopback callers only."}},
        status_code=403,
    )


async def stats(request: Request) -> Response:
    """Request counters by operationId and status, jobs by status, audio seconds."""
    if not _loopback(request):
        return _refused()
    emulator = _emulator(request)
    snapshot = emulator.stats.snapshot(
        emulator.jobs.counts(), emulator.faults.file_failure_counts()
    )
    return JSONResponse(snapshot)


async def get_faults(request: Request) -> Response:
    """The fault settings in force."""
    if not _loopback(request):
        return _refused()
    return JSONResponse(_emulator(request).faults.config.to_dict())


async def put_faults(request: Request) -> Response:
    """Change fault settings; unknown names or bad values are refused with 400."""
    if not _loopback(request):
        return _refused()
    emulator = _emulator(request)
    try:
        changes = json.loads(await request.body())
        if not isinstance(changes, dict):
            raise ValueError("the body must be a JSON object")
        config = emulator.faults.update(changes)
    except ValueError as exc:
        return JSONResponse({"error": {"code": "BadRequest", "message": str(exc)}}, status_code=400)
    return JSONResponse(config.to_dict())


async def reset(request: Request) -> Response:
    """Stats, faults and quota windows to defaults, no web hooks; with ``?jobs=true`` also
    no jobs."""
    if not _loopback(request):
        return _refused()
    emulator = _emulator(request)
    emulator.stats.reset()
    emulator.faults.reset()
    emulator.quota.reset()
    emulator.webhooks.clear()
    cleared = request.query_params.get("jobs", "").lower() in ("1", "true", "yes")
    if cleared:
        emulator.jobs.clear()
    return JSONResponse({"reset": True, "jobsDeleted": cleared})


async def forget_jobs(request: Request) -> Response:
    """Drop every transcription, as restarting the emulator does (jobs live in memory)."""
    if not _loopback(request):
        return _refused()
    emulator = _emulator(request)
    forgotten = emulator.jobs.clear()
    emulator.webhooks.forget_entities()
    return JSONResponse({"forgotten": forgotten})


async def sweep(request: Request) -> Response:
    """Delete expired transcriptions now instead of waiting for the next sweep."""
    if not _loopback(request):
        return _refused()
    return JSONResponse({"deleted": _emulator(request).jobs.sweep()})


async def health(request: Request) -> Response:
    """Liveness: 200 with the engine name (no auth, not counted)."""
    emulator = _emulator(request)
    return JSONResponse({"status": "ok", "engine": emulator.settings.engine})


def routes() -> list[Route]:
    """Admin and health routes."""
    return [
        Route("/admin/stats", stats, methods=["GET"]),
        Route("/admin/faults", get_faults, methods=["GET"]),
        Route("/admin/faults", put_faults, methods=["PUT"]),
        Route("/admin/reset", reset, methods=["POST"]),
        Route("/admin/jobs:forget", forget_jobs, methods=["POST"]),
        Route("/admin/sweep", sweep, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ]
