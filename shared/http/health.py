"""``GET /api/health``: settings valid and the ledger reachable, JSON either way."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from starlette.responses import JSONResponse, Response

from shared.http.problems import ApiProblem
from shared.redact import get_logger

if TYPE_CHECKING:
    from shared.app_context import AppContext

_log = get_logger(__name__)
_PROBE_JOB_ID = "00000000-0000-0000-0000-000000000000"


async def health(ctx: AppContext) -> Response:
    """200 when settings loaded and the ledger answers; 503 naming what failed otherwise.

    When the context itself cannot be built, :func:`unavailable` answers instead.
    """
    started = time.perf_counter()
    checks: dict[str, str] = {"settings": "ok"}
    status_code = 200
    try:
        # A point read of a row that never exists: one cheap round trip to the table.
        await asyncio.wait_for(ctx.ledger.get_job(_PROBE_JOB_ID), timeout=10)
        checks["ledger"] = "ok"
    except Exception as exc:  # any failure is the answer, not a crash
        _log.warning("health: ledger unreachable: %s", type(exc).__name__)
        checks["ledger"] = f"unreachable ({type(exc).__name__})"
        status_code = 503
    return JSONResponse(
        {
            "status": "ok" if status_code == 200 else "degraded",
            "checks": checks,
            "speechEndpoint": ctx.speech.endpoints.batch_base,
            "elapsedMs": round((time.perf_counter() - started) * 1000, 1),
        },
        status_code=status_code,
    )


def unavailable(problem: ApiProblem) -> Response:
    """The health answer when the app cannot build its context: the usual shape, and why.

    ``checks`` says which part failed (settings, or the ledger behind the identity or
    storage), ``error`` is the API's problem body with its hint; always 503.
    """
    if problem.code == "InvalidSettings":
        checks = {"settings": "invalid"}
    else:
        # The build loads the settings first, then opens the ledger table.
        checks = {"settings": "ok", "ledger": f"unreachable ({problem.code})"}
    return JSONResponse(
        {
            "status": "degraded",
            "checks": checks,
            "speechEndpoint": None,
            "error": problem.body(),
        },
        status_code=503,
    )
