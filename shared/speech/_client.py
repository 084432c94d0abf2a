"""What every Speech client shares: construction, the pipeline, paging, closing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, Literal, Self, TypeVar, get_args
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from shared.speech.auth import SpeechAuth, Surface
from shared.speech.endpoints import SpeechEndpoints
from shared.speech.errors import NotFoundError, SpeechError
from shared.speech.models import Page, ResponseModel
from shared.speech.pipeline import Pipeline, TimeoutArg
from shared.speech.retry import RetryPolicy

ApiVersion = Literal["2024-11-15", "2025-10-15"]
#: The version the app targets; 2025-10-15 is the newest GA and may be chosen per client.
DEFAULT_API_VERSION: ApiVersion = "2024-11-15"
SUPPORTED_API_VERSIONS: tuple[str, ...] = get_args(ApiVersion)

T = TypeVar("T")
R = TypeVar("R", bound=ResponseModel)


def check_api_version(api_version: str) -> ApiVersion:
    """``api_version`` if this client speaks it; v3.x was retired on 2026-03-31."""
    if api_version not in SUPPORTED_API_VERSIONS:
        raise ValueError(
            f"api_version must be one of {', '.join(SUPPORTED_API_VERSIONS)}, got {api_version!r}"
        )
    return api_version  # type: ignore[return-value]


def check_id(value: str, *, what: str = "id") -> str:
    """``value`` as a canonical UUID string; the service's ids are UUIDs."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ValueError(f"{what} must be a UUID, got {value!r}") from None


def odata_quote(value: str) -> str:
    """``value`` as an OData string literal: single quotes, inner quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def and_filters(*clauses: str | None) -> str | None:
    """The given OData clauses joined with ``and``; None when there are none."""
    present = [c for c in clauses if c]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    return " and ".join(f"({c})" for c in present)


def check_paging(top: int | None, skip: int | None) -> None:
    """Reject paging arguments the service would refuse."""
    if top is not None and top < 1:
        raise ValueError("top must be >= 1")
    if skip is not None and skip < 0:
        raise ValueError("skip must be >= 0")


class AsyncPager(Generic[T]):
    """Items of a paginated list; follows ``@nextLink`` until the service stops giving one.

    ``async for item in pager`` yields items; ``async for page in pager.by_page()`` yields
    lists. Pages are fetched lazily, one request per page.
    """

    def __init__(self, fetch: Callable[[str | None], Awaitable[tuple[list[T], str | None]]]):
        self._fetch = fetch

    async def by_page(self) -> AsyncIterator[list[T]]:
        """Each page's items, in service order."""
        link: str | None = None
        seen: set[str] = set()
        while True:
            items, link = await self._fetch(link)
            yield items
            if not link:
                return
            if link in seen:
                raise SpeechError(f"the service returned the same @nextLink twice: {link}")
            seen.add(link)

    def __aiter__(self) -> AsyncIterator[T]:
        return self._items()

    async def _items(self) -> AsyncIterator[T]:
        async for page in self.by_page():
            for item in page:
                yield item

    async def to_list(self, limit: int | None = None) -> list[T]:
        """Collect up to ``limit`` items (all when None)."""
        out: list[T] = []
        async for item in self:
            out.append(item)
            if limit is not None and len(out) >= limit:
                break
        return out


class BaseSpeechClient:
    """Shared construction for the Speech clients.

    Pass ``http_client`` to share one connection pool between clients; a client closes
    only the ``httpx.AsyncClient`` it created itself.
    """

    _surface = Surface.BATCH

    def __init__(
        self,
        endpoints: SpeechEndpoints,
        auth: SpeechAuth,
        *,
        api_version: str = DEFAULT_API_VERSION,
        retry: RetryPolicy | None = None,
        timeout: TimeoutArg = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        reason = auth.supports(self._surface)
        if reason:
            raise ValueError(reason)
        self.endpoints = endpoints
        self.api_version = check_api_version(api_version)
        self._auth = auth
        self._owns_http = http_client is None
        http = http_client or httpx.AsyncClient(follow_redirects=False)
        self._pipeline = Pipeline(http, retry=retry, timeout=timeout)

    async def aclose(self) -> None:
        """Close the HTTP connection pool if this client created it."""
        if self._owns_http:
            await self._pipeline.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _url(self, path: str) -> str:
        return f"{self.endpoints.batch_base}{path}"

    def _params(self, **extra: Any) -> dict[str, str | int]:
        params: dict[str, str | int] = {"api-version": self.api_version}
        params.update({k: v for k, v in extra.items() if v is not None})
        return params

    def _check_next_link(self, link: str) -> str:
        """A ``@nextLink`` to follow; it must stay on the service host (auth goes with it)."""
        base = urlsplit(self.endpoints.batch_base)
        parts = urlsplit(link)
        if (parts.scheme, parts.netloc) != (base.scheme, base.netloc):
            raise SpeechError(
                f"refusing to follow @nextLink to another host ({parts.netloc}): "
                "the request would carry this resource's credentials"
            )
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if "api-version" not in query:
            query["api-version"] = self.api_version
            link = urlunsplit(parts._replace(query=urlencode(query)))
        return link

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str | int] | None = None,
        json: Any = None,
        idempotent: bool = True,
        timeout: TimeoutArg = None,
        retry: RetryPolicy | None = None,
    ) -> httpx.Response:
        """One call to ``{batch_base}{path}`` with this client's auth and ``api-version``."""
        return await self._pipeline.send(
            method,
            self._url(path),
            auth=self._auth,
            surface=self._surface,
            params=params if params is not None else self._params(),
            json=json,
            idempotent=idempotent,
            timeout=timeout,
            retry=retry,
        )

    async def _delete(
        self,
        path: str,
        *,
        missing_ok: bool,
        timeout: TimeoutArg = None,
        retry: RetryPolicy | None = None,
    ) -> bool:
        """``DELETE {path}``: True when this call deleted the entity.

        With ``missing_ok`` an entity already gone returns False instead of raising
        :class:`NotFoundError` (a retried delete finds it gone).
        """
        try:
            await self._send("DELETE", path, timeout=timeout, retry=retry)
        except NotFoundError:
            if missing_ok:
                return False
            raise
        return True

    def _paged(
        self,
        path: str,
        params: dict[str, str | int],
        page_model: type[Page[R]],
        *,
        timeout: TimeoutArg = None,
        retry: RetryPolicy | None = None,
    ) -> AsyncPager[R]:
        async def fetch(link: str | None) -> tuple[list[R], str | None]:
            if link is None:
                response = await self._send(
                    "GET", path, params=params, timeout=timeout, retry=retry
                )
            else:
                response = await self._pipeline.send(
                    "GET",
                    self._check_next_link(link),
                    auth=self._auth,
                    surface=self._surface,
                    idempotent=True,
                    timeout=timeout,
                    retry=retry,
                )
            page = page_model.model_validate(response.json())
            return list(page.values or []), page.next_link

        return AsyncPager(fetch)
