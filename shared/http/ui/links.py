"""Every URL the status page prints, built in one place so that each one is escaped alike.

A person opens the page as ``/api/ui?code=<function key>``: the Functions host wants that
key on every request, so each link and form of the page carries the same ``code`` forward
(and nothing else of the request). Paths are percent-encoded with
:func:`urllib.parse.quote` (``/`` kept, so a blob path stays readable) and queries with
:func:`urllib.parse.urlencode`; the templates then escape the whole URL for the attribute.
No URL here holds anything but what the page itself was given and the ledger's names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode

#: host.json ``extensions.http.routePrefix``: where the host serves the app's routes.
API_ROOT = "/api"
#: Asks the re-run and cancel endpoints to answer with a 303 back to the page, not JSON.
REDIRECT_PARAMS = {"redirect": "ui"}


@dataclass(frozen=True)
class Links:
    """The URLs of one rendered page; ``code`` is the function key the request came with.

    ``container`` is the container the page looks at when it is not the input container;
    it is carried like ``code`` so that a link never silently switches containers.
    """

    code: str | None = None
    container: str | None = None

    def _url(self, route: str, params: Mapping[str, str | int | None]) -> str:
        query: dict[str, str | int] = {"code": self.code} if self.code else {}
        query.update({key: value for key, value in params.items() if value not in (None, "")})
        encoded = urlencode(query, quote_via=quote)
        return f"{API_ROOT}/{route}" + (f"?{encoded}" if encoded else "")

    def page(
        self,
        *,
        state: str | None = None,
        prefix: str | None = None,
        continuation: str | None = None,
        limit: int | None = None,
    ) -> str:
        """The list page with these filters (and this page's container)."""
        return self._url(
            "ui",
            {
                "state": state,
                "prefix": prefix,
                "container": self.container,
                "limit": limit,
                "continuation": continuation,
            },
        )

    @property
    def list_action(self) -> str:
        """The filter form's target: a GET form replaces the query, so ``code`` goes in a
        hidden field of the form instead."""
        return f"{API_ROOT}/ui"

    def file(self, path: str, container: str | None = None) -> str:
        """One file's page; ``container`` defaults to this page's."""
        return self._url(
            f"ui/files/{quote(path, safe='/')}", {"container": container or self.container}
        )

    def action(self, path: str, verb: str, *, etag: str, container: str) -> str:
        """``POST /api/transcriptions/{path}:{verb}`` for one version (``retry``, ``cancel``)."""
        return self._url(
            f"transcriptions/{quote(path, safe='/')}:{verb}",
            {"etag": etag, "container": container, **REDIRECT_PARAMS},
        )

    def bulk_retry(self, prefix: str | None) -> str:
        """``POST /api/retry``: re-run every ``Failed`` file under ``prefix``."""
        return self._url(
            "retry",
            {"state": "Failed", "prefix": prefix, "container": self.container, **REDIRECT_PARAMS},
        )
