"""Where audio comes from and results go: HTTP(S) downloads, Blob containers, local files.

* Audio is downloaded from each content URL with httpx, trusting ``EMULATOR_CA_BUNDLE``
  (Azurite's self-signed CA) when set. A container URL is listed with the Blob REST API
  (``?restype=container&comp=list``) through the SAS it carries.
* Results live under ``EMULATOR_STATE_DIR/<transcription id>/`` and are served by the
  emulator at URLs signed like a SAS (``sp``, ``se``, ``sig``): an expired or altered URL is
  refused with Blob Storage's 403 ``AuthenticationFailed``.
* With ``destinationContainerUrl``, results are written there (Put Blob, ``BlockBlob``)
  through the caller's SAS, and ``contentUrl`` is the blob URL without a SAS (spec:
  "returned urls do not contain an SAS token").

Error messages and logs use URLs with the query removed, so a SAS signature never leaks.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
import shutil
import ssl
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import httpx

from local.emulator.clock import Clock, iso

_SIGNATURE = re.compile(r"(?i)(\bsig=)[^&\s\"']+")


class _RedactSignatures(logging.Filter):
    """Blanks ``sig=`` values in httpx's request log lines (it logs whole URLs at INFO)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "sig=" in message.lower():
            record.msg = _SIGNATURE.sub(r"\1REDACTED", message)
            record.args = None
        return True


_REDACTION = _RedactSignatures()

#: Blob service version sent with Put Blob and List Blobs.
BLOB_API_VERSION = "2024-11-04"
_DOWNLOAD_CHUNK = 1 << 16


def strip_query(url: str) -> str:
    """``url`` without its query and fragment (drops a SAS before logging or echoing)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class TransferError(Exception):
    """A download, listing or upload failed; the message never contains a SAS."""


@dataclass(frozen=True)
class ContainerRef:
    """A Blob container URL split into its parts (path-style for Azurite/IP hosts)."""

    base: str  # scheme://host[/account]/container, no trailing slash
    prefix: str  # virtual directory inside the container ("" for the root)
    query: str  # the SAS, without "?"

    @classmethod
    def parse(cls, url: str) -> ContainerRef:
        """Split a container URL; ValueError if it names no container."""
        parts = urlsplit(url)
        segments = [s for s in parts.path.split("/") if s]
        host = parts.hostname or ""
        # Azurite and other emulators address accounts path-style: /<account>/<container>.
        path_style = host == "localhost" or _is_ip(host)
        keep = 2 if path_style else 1
        if len(segments) < keep:
            raise ValueError("the URL names no blob container")
        base_path = "/" + "/".join(segments[:keep])
        prefix = "/".join(segments[keep:])
        if prefix:
            prefix += "/"
        base = urlunsplit((parts.scheme, parts.netloc, base_path, "", ""))
        return cls(base=base, prefix=prefix, query=parts.query)

    def blob_url(self, name: str, *, with_sas: bool = True) -> str:
        """The URL of blob ``name`` in this container (with the container's SAS if asked)."""
        url = f"{self.base}/{quote(name, safe='/')}"
        return f"{url}?{self.query}" if with_sas and self.query else url


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class BlobTransfer:
    """Async HTTP(S) transfers to and from storage, sharing one connection pool."""

    def __init__(self, ca_bundle: Path | None, *, timeout: float = 60.0) -> None:
        verify: ssl.SSLContext | bool = True
        if ca_bundle is not None:
            verify = ssl.create_default_context(cafile=str(ca_bundle))
        self._client = httpx.AsyncClient(verify=verify, timeout=timeout, follow_redirects=True)
        # Process-wide but idempotent: whatever logs httpx's lines, a SAS never shows.
        httpx_logger = logging.getLogger("httpx")
        if _REDACTION not in httpx_logger.filters:
            httpx_logger.addFilter(_REDACTION)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def download(self, url: str, *, max_bytes: int) -> bytes:
        """The body of ``GET url``; :class:`TransferError` on any failure or above ``max_bytes``."""
        shown = strip_query(url)
        try:
            async with self._client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise TransferError(
                        f"The recordings URI {shown} is not accessible: HTTP "
                        f"{response.status_code} {response.reason_phrase}."
                    )
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes(_DOWNLOAD_CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise TransferError(
                            f"The file at {shown} is larger than {max_bytes} bytes."
                        )
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.HTTPError as exc:
            raise TransferError(
                f"The recordings URI {shown} is not accessible: {type(exc).__name__}."
            ) from None

    async def list_blobs(self, container: ContainerRef) -> list[str]:
        """Names of all blobs under the container's prefix, following ``NextMarker``."""
        names: list[str] = []
        marker = ""
        while True:
            params = {"restype": "container", "comp": "list"}
            if container.prefix:
                params["prefix"] = container.prefix
            if marker:
                params["marker"] = marker
            # The SAS is appended as received: re-encoding it could change the signature.
            query = "&".join(filter(None, [container.query, urlencode(params)]))
            try:
                response = await self._client.get(
                    f"{container.base}?{query}", headers={"x-ms-version": BLOB_API_VERSION}
                )
            except httpx.HTTPError as exc:
                raise TransferError(
                    f"The container {container.base} is not accessible: {type(exc).__name__}."
                ) from None
            if response.status_code != 200:
                raise TransferError(
                    f"The container {container.base} cannot be listed: HTTP "
                    f"{response.status_code} {response.reason_phrase}. The SAS needs read and "
                    "list permissions."
                )
            try:
                # The standard library parser; expat refuses entity-expansion bombs.
                root = ElementTree.fromstring(response.content)  # noqa: S314
            except ElementTree.ParseError:
                raise TransferError(f"The container {container.base} answered no list.") from None
            names.extend(
                name.text for name in root.iterfind("./Blobs/Blob/Name") if name.text is not None
            )
            marker = root.findtext("NextMarker") or ""
            if not marker:
                return names

    async def upload(self, container: ContainerRef, name: str, data: bytes) -> str:
        """Put ``data`` as block blob ``name``; return its URL without the SAS."""
        try:
            response = await self._client.put(
                container.blob_url(name),
                content=data,
                headers={
                    "x-ms-blob-type": "BlockBlob",
                    "x-ms-version": BLOB_API_VERSION,
                    "Content-Type": "application/json",
                },
            )
        except httpx.HTTPError as exc:
            raise TransferError(
                f"The destination container {container.base} is not accessible: "
                f"{type(exc).__name__}."
            ) from None
        if response.status_code not in (200, 201):
            raise TransferError(
                f"Writing to the destination container {container.base} failed: HTTP "
                f"{response.status_code} {response.reason_phrase}. The SAS needs write "
                "permission."
            )
        return container.blob_url(name, with_sas=False)


class ResultStore:
    """Result files on local disk, one folder per transcription."""

    def __init__(self, root: Path) -> None:
        self._root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, job_id: str, file_id: str) -> Path:
        return self._root / job_id / f"{file_id}.json"

    def write(self, job_id: str, file_id: str, data: bytes) -> None:
        """Store one file of a transcription."""
        path = self._path(job_id, file_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def read(self, job_id: str, file_id: str) -> bytes | None:
        """A stored file, or None if it (or its transcription) is gone."""
        try:
            return self._path(job_id, file_id).read_bytes()
        except FileNotFoundError:
            return None

    def delete_job(self, job_id: str) -> None:
        """Remove every file of a transcription."""
        shutil.rmtree(self._root / job_id, ignore_errors=True)


class UrlSigner:
    """HMAC signatures for the result URLs the emulator serves (SAS-like ``se`` + ``sig``)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._secret = secrets.token_bytes(32)

    def _signature(self, path: str, expiry: str) -> str:
        digest = hmac.new(self._secret, f"r\n{expiry}\n{path}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(self, path: str, lifetime: dt.timedelta) -> str:
        """The query string (``sp=r&se=...&sig=...``) that grants read access to ``path``."""
        expiry = iso(self._clock.now() + lifetime)
        return f"sp=r&sr=b&se={quote(expiry)}&sig={self._signature(path, expiry)}"

    def verify(self, path: str, expiry: str | None, signature: str | None) -> bool:
        """True if ``signature`` is this emulator's for ``path`` and ``expiry`` lies ahead."""
        if not expiry or not signature:
            return False
        if not hmac.compare_digest(signature, self._signature(path, expiry)):
            return False
        try:
            until = dt.datetime.fromisoformat(expiry.replace("Z", "+00:00"))
        except ValueError:
            return False
        return until > self._clock.now()
