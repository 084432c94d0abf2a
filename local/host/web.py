"""The host's HTTP front: function routes under ``/<routePrefix>/``, keys, health and status.

Requests for HTTP-stream functions (FastAPI ``Request``) get a Starlette request over the
live ASGI ``receive`` channel: the body reaches the function as the client sends it, and
uvicorn's flow control stops reading the socket while the function does not consume, so
the host never holds a whole upload. Their ``Response`` (``StreamingResponse`` included)
is sent as is; any other return value is JSON-encoded the way FastAPI would. Classic
``func.HttpRequest`` functions get the body read whole first and their ``HttpResponse``
converted.

Keys (``x-functions-key`` header or ``code`` query): ``anonymous`` routes are open,
``function`` routes take the function key or the master key, ``admin`` routes the master
key; anything else is 401 with an empty body, like the real host. Paths outside the prefix:
``GET /health`` (open, for the stack's readiness check) and ``GET /admin/host/status``
(master key).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

from local.host.app import FunctionSpec, HttpConfig
from local.host.bindings import ParamKind
from local.host.invoke import InvocationFailed, Invoker
from local.keys import HostKeys

log = logging.getLogger("local.host.http")

HEALTH_PATH = "/health"
STATUS_PATH = "/admin/host/status"
KEY_HEADER = "x-functions-key"
KEY_QUERY = "code"


@dataclass(frozen=True)
class HttpRoute:
    """An HTTP function and its parsed trigger."""

    spec: FunctionSpec
    config: HttpConfig

    def allows(self, method: str) -> bool:
        """True if ``method`` is among the trigger's methods (all when none are listed)."""
        return not self.config.methods or method in self.config.methods


def _key(request: Request) -> str | None:
    return request.headers.get(KEY_HEADER) or request.query_params.get(KEY_QUERY)


def _from_http_response(result: func.HttpResponse) -> Response:
    headers = dict(result.headers)
    if result.mimetype and not any(name.lower() == "content-type" for name in headers):
        textual = result.mimetype.startswith("text/") or "json" in result.mimetype
        charset = f"; charset={result.charset}" if textual and result.charset else ""
        headers["Content-Type"] = f"{result.mimetype}{charset}"
    return Response(content=result.get_body(), status_code=result.status_code, headers=headers)


def to_response(result: Any, kind: ParamKind) -> Response:
    """The ASGI response for what an HTTP function returned."""
    if isinstance(result, Response):
        return result
    if isinstance(result, func.HttpResponse):
        return _from_http_response(result)
    if kind is ParamKind.HTTP_STREAM:
        # What the worker's FastAPI route does with a plain return value.
        from fastapi.encoders import jsonable_encoder

        return JSONResponse(jsonable_encoder(result))
    if result is None:
        return Response(status_code=204)
    if isinstance(result, str):
        return Response(result, media_type="text/plain")
    if isinstance(result, bytes):
        return Response(result, media_type="application/octet-stream")
    raise TypeError(
        f"an HTTP function returned {type(result).__name__}; return func.HttpResponse, "
        "a Starlette/FastAPI Response, str or bytes"
    )


class HttpFront:
    """The ASGI application of the host (lifespan included)."""

    def __init__(
        self,
        functions: Sequence[FunctionSpec],
        *,
        invoker: Invoker,
        keys: HostKeys,
        route_prefix: str,
        status: Callable[[], dict[str, Any]],
        on_startup: Callable[[], Awaitable[None]],
        on_shutdown: Callable[[], Awaitable[None]],
    ) -> None:
        routes = [
            HttpRoute(spec, spec.config)
            for spec in functions
            if isinstance(spec.config, HttpConfig)
        ]
        self.routes = sorted(routes, key=lambda route: route.config.route.precedence())
        self.prefix = f"/{route_prefix}" if route_prefix else ""
        self._invoker = invoker
        self._keys = keys
        self._status = status
        self._on_startup = on_startup
        self._on_shutdown = on_shutdown

    def url_of(self, route: HttpRoute, base: str) -> str:
        """The route's URL template under ``base`` (for the start-up listing)."""
        return f"{base}{self.prefix}/{route.config.route.template.strip('/')}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # websockets: not part of Azure Functions HTTP triggers
        began = time.monotonic()
        status: list[int] = []

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        try:
            await self._handle(scope, receive, recording_send)
        finally:
            # Path only: the query may carry a key (``code=``) or a SAS.
            log.info(
                "%s %s -> %s (%d ms)",
                scope["method"],
                scope["path"],
                status[0] if status else "no response",
                (time.monotonic() - began) * 1000,
            )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await self._on_startup()
            except Exception as exc:
                log.exception("the host failed to start")
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
        if message["type"] == "lifespan.shutdown":
            try:
                await self._on_shutdown()
            except Exception as exc:
                log.exception("the host did not stop cleanly")
                await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.shutdown.complete"})

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"].upper()
        request = Request(scope, receive)
        if path == HEALTH_PATH and method in ("GET", "HEAD"):
            await JSONResponse({"status": "healthy"})(scope, receive, send)
            return
        if path == STATUS_PATH and method == "GET":
            if not self._keys.opens(_key(request), admin=True):
                await Response(status_code=401)(scope, receive, send)
                return
            await JSONResponse(self._status())(scope, receive, send)
            return
        found = self._match(method, path)
        if found is None:
            await Response(status_code=404)(scope, receive, send)
            return
        route, params = found
        level = route.config.auth_level
        if level != "anonymous" and not self._keys.opens(_key(request), admin=level == "admin"):
            await Response(status_code=401)(scope, receive, send)
            return
        await self._invoke(route, params, scope, receive, send)

    def _match(self, method: str, path: str) -> tuple[HttpRoute, dict[str, str]] | None:
        if self.prefix:
            if path != self.prefix and not path.startswith(f"{self.prefix}/"):
                return None
            path = path[len(self.prefix) :]
        for route in self.routes:
            params = route.config.route.match(path)
            # Two functions may share a route with different methods: keep looking.
            if params is not None and route.allows(method):
                return route, params
        return None

    async def _invoke(
        self,
        route: HttpRoute,
        params: dict[str, str],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        spec = route.spec
        kind = spec.trigger_param.kind
        # The extension's RequestSynchronizer fills path_params the same way.
        request = Request({**scope, "path_params": params}, receive)

        async def trigger() -> Any:
            if kind is ParamKind.HTTP_STREAM:
                return request
            return func.HttpRequest(
                method=request.method,
                url=str(request.url),
                headers=dict(request.headers),
                params=dict(request.query_params),
                route_params=params,
                body=await request.body(),
            )

        try:
            result = await self._invoker.invoke(
                spec,
                trigger,
                metadata=params,
                reason=f"HTTP {request.method} {scope['path']}",
            )
        except InvocationFailed:
            response = Response(status_code=500)
        else:
            try:
                response = to_response(result, kind)
            except TypeError as exc:
                log.error("Function %s: %s", spec.name, exc)
                response = Response(status_code=500)
        await response(scope, receive, send)
