"""One HTTP exchange of the API: run the handler's work, map failures, log one line.

Both streaming handlers answer failures the same way — an :class:`ApiProblem` as its JSON,
a Speech error mapped by :func:`from_speech_error`, a vanished client with a bare 400 — and
log the outcome, the time taken and how many body bytes were read (never a URL: it may
carry a SAS signature).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import ClientDisconnect
from starlette.responses import Response

from shared.http.problems import ApiProblem, from_speech_error
from shared.speech.config import AuthMode
from shared.speech.errors import SpeechError

if TYPE_CHECKING:
    from shared.http.body import MeteredBody


@dataclass
class Exchange:
    """What the work reports back for the log line."""

    outcome: str = "error"
    body: MeteredBody | None = None


async def answer(
    name: str,
    work: Callable[[Exchange], Awaitable[Response]],
    *,
    auth_mode: AuthMode,
    short_audio: bool,
    log: logging.Logger,
) -> Response:
    """``work``'s response, or the JSON problem its failure maps to."""
    started = time.perf_counter()
    exchange = Exchange()
    try:
        return await work(exchange)
    except ApiProblem as problem:
        exchange.outcome = problem.code
        return problem.response()
    except SpeechError as exc:
        mapped = from_speech_error(exc, auth_mode=auth_mode, short_audio=short_audio)
        exchange.outcome = mapped.code
        return mapped.response()
    except ClientDisconnect:
        # Nobody is left to read an answer; the upstream request was aborted with the body.
        exchange.outcome = "ClientDisconnected"
        return Response(status_code=400)
    finally:
        log.info(
            "%s: %s after %.0f ms, %d bytes read",
            name,
            exchange.outcome,
            (time.perf_counter() - started) * 1000,
            exchange.body.bytes_read if exchange.body is not None else 0,
        )
