"""An ASGI app that records every request and answers through a test's handler.

Tests that need a real peer with specific behaviour (a 503 then a 200, a slow token
exchange, a 429 storm) script it here and run it with :func:`tests.support.server.serve`.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    raw_query: str
    headers: dict[str, str]
    body: bytes
    chunks: int

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class Reply:
    """What the handler wants sent back."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        headers = {k.lower(): v for k, v in self.headers.items()}
        if self.body is None:
            data = b""
        elif isinstance(self.body, bytes):
            data = self.body
        elif isinstance(self.body, str):
            data = self.body.encode()
            headers.setdefault("content-type", "text/plain")
        else:
            data = json.dumps(self.body).encode()
            headers.setdefault("content-type", "application/json")
        return data, [(k.encode(), v.encode()) for k, v in headers.items()]


Handler = Callable[[Recorded], "Reply | Awaitable[Reply]"]


class ScriptedApp:
    """ASGI app: record, then answer with ``handler(request)``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Recorded] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = bytearray()
        chunks = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            if message.get("body"):
                chunks += 1
                body.extend(message["body"])
            if not message.get("more_body"):
                break
        raw_query = scope["query_string"].decode()
        recorded = Recorded(
            method=scope["method"],
            path=scope["path"],
            query=dict(parse_qsl(raw_query, keep_blank_values=True)),
            raw_query=raw_query,
            headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
            body=bytes(body),
            chunks=chunks,
        )
        self.requests.append(recorded)
        reply = self.handler(recorded)
        if inspect.isawaitable(reply):
            reply = await reply
        data, headers = reply.encoded()
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": data})
