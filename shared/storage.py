"""Blob Storage as the pipeline needs it: properties, a ranged peek, SAS, listings, outputs.

All calls go through the sync ``azure-storage-blob`` client in a worker thread (the async
client would need aiohttp, which the app does not ship). The SDK is imported inside the
functions that use it, so importing this module costs nothing at cold start.

Audio is never read whole: the intake looks at :data:`~shared.audio_formats.SNIFF_BYTES`
bytes through a ranged read pinned to the ETag it saw. SAS URLs are read-only and
short-lived; with managed identity they are *user-delegation* SAS signed with a delegation
key that is cached per process and renewed well before it could cut a SAS short. Only a
development connection string (Azurite's well-known account) signs with the account key.
No URL with a query string is ever logged: :func:`~shared.redact.redact_url` first. Every
call to the service is a span (operation and container, never a blob name or SAS).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import mimetypes
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shared.audio_formats import SNIFF_BYTES
from shared.redact import get_logger
from shared.telemetry import storage_span

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient, UserDelegationKey
    from opentelemetry.trace import Span

    from shared.settings import AppSettings

_log = get_logger(__name__)

#: Content type and cache policy per output extension. Outputs are rewritten when a job is
#: re-finished, so caches must revalidate rather than serve a stale transcript.
OUTPUT_CONTENT_TYPES: dict[str, str] = {
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".srt": "application/x-subrip",
    ".vtt": "text/vtt",
}
OUTPUT_CACHE_CONTROL = "no-cache"

#: A SAS starts this far in the past: the storage front end's clock may run behind ours.
SAS_CLOCK_SKEW = dt.timedelta(minutes=5)
#: Delegation keys are requested for the SAS validity plus this, and renewed once less than
#: the SAS validity plus :data:`KEY_RENEW_MARGIN` is left: one key serves about this long.
KEY_REUSE = dt.timedelta(hours=12)
KEY_RENEW_MARGIN = dt.timedelta(minutes=10)
#: Storage caps a user delegation key at seven days.
MAX_KEY_LIFETIME = dt.timedelta(days=7)


def normalize_etag(etag: str | None) -> str:
    """The ETag without its surrounding quotes (``"0x8DC..."`` -> ``0x8DC...``)."""
    return (etag or "").strip().strip('"')


def quoted_etag(etag: str) -> str:
    """The ETag as HTTP conditions carry it, in quotes."""
    return f'"{normalize_etag(etag)}"'


@dataclass(frozen=True)
class BlobInfo:
    """What the pipeline knows about one blob version, without its content."""

    container: str
    name: str
    size: int
    #: Unquoted ETag: identifies the version (every overwrite changes it).
    etag: str
    metadata: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    last_modified: dt.datetime | None = None


def _info(container: str, props: Any) -> BlobInfo:
    settings = getattr(props, "content_settings", None)
    return BlobInfo(
        container=container,
        name=str(props.name),
        size=int(props.size or 0),
        etag=normalize_etag(props.etag),
        metadata=dict(props.metadata or {}),
        content_type=getattr(settings, "content_type", None),
        last_modified=props.last_modified,
    )


def content_type_for(path: str) -> str:
    """Content type of an output blob, from its extension."""
    suffix = PurePosixPath(path).suffix.lower()
    known = OUTPUT_CONTENT_TYPES.get(suffix)
    if known:
        return known
    guessed, _ = mimetypes.guess_type(path)
    return guessed or "application/octet-stream"


class BlobStorage:
    """The app's Blob Storage operations, async over the sync SDK client.

    ``account_key`` is given only for a development connection string; without it every
    SAS is a user-delegation SAS.
    """

    def __init__(
        self,
        service: BlobServiceClient,
        settings: AppSettings,
        *,
        account_key: str | None = None,
    ) -> None:
        self.service = service
        self.settings = settings
        self._account_key = account_key
        self._key: UserDelegationKey | None = None
        self._key_expiry: dt.datetime | None = None
        self._key_lock = asyncio.Lock()

    def _span(self, operation: str, container: str | None) -> AbstractContextManager[Span]:
        return storage_span(
            "blob", operation, resource=container, server=urlsplit(self.service.url).hostname
        )

    # -- reading --------------------------------------------------------------------------

    async def get_properties(self, container: str, name: str) -> BlobInfo | None:
        """Size, ETag and metadata of a blob; None if it does not exist (any more)."""
        from azure.core.exceptions import ResourceNotFoundError

        client = self.service.get_blob_client(container, name)
        # "Not found" is an answer here, not a failed call: the span ends normally.
        with self._span("get_properties", container):
            try:
                props = await asyncio.to_thread(client.get_blob_properties)
            except ResourceNotFoundError:
                return None
        return _info(container, props)

    async def read_head(self, blob: BlobInfo, length: int = SNIFF_BYTES) -> bytes:
        """The first ``length`` bytes of exactly this version (a ranged read, never more).

        Raises ``ResourceModifiedError`` if the blob was overwritten since ``blob`` was
        read: the caller's event is then about a version that no longer exists.
        """
        from azure.core import MatchConditions

        if blob.size <= 0:
            return b""
        client = self.service.get_blob_client(blob.container, blob.name)

        def read() -> bytes:
            stream = client.download_blob(
                offset=0,
                length=min(length, blob.size),
                etag=quoted_etag(blob.etag),
                match_condition=MatchConditions.IfNotModified,
                max_concurrency=1,
            )
            return stream.readall()

        with self._span("download_range", blob.container):
            return await asyncio.to_thread(read)

    async def read_range(self, blob: BlobInfo, offset: int, length: int) -> bytes:
        """``length`` bytes of exactly this version from ``offset`` (clipped to the blob)."""
        from azure.core import MatchConditions

        offset = max(0, min(offset, blob.size))
        length = min(length, blob.size - offset)
        if length <= 0:
            return b""
        client = self.service.get_blob_client(blob.container, blob.name)

        def read() -> bytes:
            stream = client.download_blob(
                offset=offset,
                length=length,
                etag=quoted_etag(blob.etag),
                match_condition=MatchConditions.IfNotModified,
                max_concurrency=1,
            )
            return stream.readall()

        with self._span("download_range", blob.container):
            return await asyncio.to_thread(read)

    async def stream(self, blob: BlobInfo, *, chunk_bytes: int = 1024**2) -> AsyncIterator[bytes]:
        """Exactly this version's content, one ranged read of ``chunk_bytes`` at a time.

        Only one chunk is in memory at once, however large the blob. Every read is pinned to
        the ETag, so an overwrite during the transfer raises ``ResourceModifiedError`` instead
        of splicing two versions together.
        """
        offset = 0
        while offset < blob.size:
            chunk = await self.read_range(blob, offset, chunk_bytes)
            if not chunk:
                return
            offset += len(chunk)
            yield chunk

    async def read_small(self, blob: BlobInfo, max_bytes: int) -> bytes:
        """The whole content of a small blob (a manifest), refusing anything larger."""
        if blob.size > max_bytes:
            raise ValueError(f"{blob.name} is {blob.size} bytes; at most {max_bytes} are read")
        return await self.read_head(blob, length=max(blob.size, 1))

    async def list_blobs(self, container: str, prefix: str, *, limit: int) -> list[BlobInfo]:
        """Blobs whose name starts with ``prefix`` (name order), at most ``limit`` + 1.

        One more than ``limit`` is returned when there are more, so callers can tell
        "exactly the limit" from "too many" without listing everything.
        """
        client = self.service.get_container_client(container)

        def collect() -> list[BlobInfo]:
            found: list[BlobInfo] = []
            for props in client.list_blobs(name_starts_with=prefix or None, include=["metadata"]):
                found.append(_info(container, props))
                if len(found) > limit:
                    break
            return found

        with self._span("list_blobs", container):
            return await asyncio.to_thread(collect)

    async def container_exists(self, container: str) -> bool:
        """True if ``container`` exists (a manifest may name one that does not)."""
        client = self.service.get_container_client(container)
        with self._span("container_exists", container):
            return bool(await asyncio.to_thread(client.exists))

    async def list_page(
        self, container: str, *, marker: str | None, size: int
    ) -> tuple[list[BlobInfo], str | None]:
        """One page of the container in name order (no metadata), and the next marker.

        The marker is the service's own continuation: a sweep keeps it between runs and
        resumes where it stopped. None means the listing is complete.
        """
        client = self.service.get_container_client(container)

        def page() -> tuple[list[BlobInfo], str | None]:
            pages: Any = client.list_blobs(results_per_page=size).by_page(continuation_token=marker)
            found = [_info(container, props) for props in next(pages, [])]
            return found, pages.continuation_token or None

        with self._span("list_page", container):
            return await asyncio.to_thread(page)

    # -- URLs and SAS ---------------------------------------------------------------------

    def blob_url(self, container: str, name: str) -> str:
        """The blob's URL without any query (safe to log, store and show).

        Exactly the URL a SAS from :meth:`sas_url` is appended to, so a job's result can
        be matched back to its source by comparing URLs.
        """
        return self.service.get_blob_client(container, name).url.split("?", 1)[0]

    async def sas_url(
        self,
        container: str,
        name: str,
        *,
        now: dt.datetime | None = None,
        lifetime: dt.timedelta | None = None,
    ) -> str:
        """A read-only SAS URL for the blob, valid ``lifetime`` (``sas_validity_hours``) from now.

        Jobs may wait hours before the service starts them and fetches the audio, so the
        default validity is long; a link handed to a person (the status page's downloads)
        passes a short ``lifetime``. The SAS grants read on this one blob only.
        """
        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        now = now or dt.datetime.now(dt.UTC)
        expiry = now + (lifetime or dt.timedelta(hours=self.settings.sas_validity_hours))
        common: dict[str, Any] = {
            "account_name": self.service.account_name,
            "container_name": container,
            "blob_name": name,
            "permission": BlobSasPermissions(read=True),
            "start": now - SAS_CLOCK_SKEW,
        }
        if self.service.url.startswith("https://"):
            common["protocol"] = "https"
        if self._account_key is not None:
            sas = generate_blob_sas(account_key=self._account_key, expiry=expiry, **common)
        else:
            key, key_expiry = await self._delegation_key(now, expiry)
            # A SAS is worthless once its key expires; only the 7-day maximum can clip it.
            sas = generate_blob_sas(
                user_delegation_key=key, expiry=min(expiry, key_expiry), **common
            )
        return f"{self.service.get_blob_client(container, name).url}?{sas}"

    async def _delegation_key(
        self, now: dt.datetime, sas_expiry: dt.datetime
    ) -> tuple[UserDelegationKey, dt.datetime]:
        """A user delegation key that outlives ``sas_expiry``, and its expiry.

        One key serves every SAS for about :data:`KEY_REUSE`; concurrent callers wait for
        one request instead of each making their own.
        """
        # Storage grants keys up to seven days ahead of *its* clock: stay a skew inside.
        ceiling = now + MAX_KEY_LIFETIME - SAS_CLOCK_SKEW
        needed = min(sas_expiry, ceiling - 2 * KEY_RENEW_MARGIN)
        async with self._key_lock:
            if (
                self._key is not None
                and self._key_expiry is not None
                and self._key_expiry >= needed + KEY_RENEW_MARGIN
            ):
                return self._key, self._key_expiry
            expiry = min(sas_expiry + KEY_REUSE, ceiling)
            with self._span("get_user_delegation_key", None):
                self._key = await asyncio.to_thread(
                    self.service.get_user_delegation_key, now - SAS_CLOCK_SKEW, expiry
                )
            self._key_expiry = expiry
            _log.info("new user delegation key, valid until %s", expiry.isoformat())
            return self._key, expiry

    # -- writing --------------------------------------------------------------------------

    async def write_output(
        self, name: str, data: bytes | str, *, container: str | None = None
    ) -> str:
        """Write (overwrite) an output blob with its content type; return its URL (no SAS)."""
        from azure.core.exceptions import ResourceNotFoundError
        from azure.storage.blob import ContentSettings

        target = container or self.settings.output_container
        body = data.encode("utf-8") if isinstance(data, str) else data
        client = self.service.get_blob_client(target, name)
        content = ContentSettings(
            content_type=content_type_for(name), cache_control=OUTPUT_CACHE_CONTROL
        )

        def upload() -> None:
            client.upload_blob(body, overwrite=True, content_settings=content)

        try:
            with self._span("upload", target):
                await asyncio.to_thread(upload)
        except ResourceNotFoundError as exc:
            # Deployed apps get the container from the infrastructure; a fresh local
            # account may not have it yet.
            if getattr(exc, "error_code", None) != "ContainerNotFound":
                raise
            await self.ensure_container(target)
            with self._span("upload", target):
                await asyncio.to_thread(upload)
        return self.blob_url(target, name)

    async def delete_output(self, name: str, *, container: str | None = None) -> bool:
        """Delete an output blob; False if there was none."""
        from azure.core.exceptions import ResourceNotFoundError

        target = container or self.settings.output_container
        client = self.service.get_blob_client(target, name)
        with self._span("delete", target):
            try:
                await asyncio.to_thread(client.delete_blob)
            except ResourceNotFoundError:
                return False
        return True

    async def ensure_container(self, container: str) -> None:
        """Create ``container`` unless it exists."""
        from azure.core.exceptions import ResourceExistsError

        client = self.service.get_container_client(container)
        # An existing container is the wanted state, not a failed call.
        with self._span("create_container", container), contextlib.suppress(ResourceExistsError):
            await asyncio.to_thread(client.create_container)
