"""Where each Speech surface lives, for a custom-subdomain endpoint or a region + cloud.

Batch transcription, models and fast transcription share ``{endpoint}/speechtotext``;
short audio and the key-for-token exchange have their own hosts on regional endpoints.
Entra ID needs a custom subdomain (``https://<name>.cognitiveservices.azure.com``); on
such an endpoint short audio is served under ``/stt/speech/...`` and the token exchange
under ``/sts/v1.0/issueToken``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

SHORT_AUDIO_PATH = "/speech/recognition/conversation/cognitiveservices/v1"
ISSUE_TOKEN_PATH = "/sts/v1.0/issueToken"

_REGION = re.compile(r"^[a-z0-9]{2,40}$")


class Cloud(StrEnum):
    """The Azure cloud a Speech resource lives in."""

    PUBLIC = "public"
    CHINA = "china"
    US_GOVERNMENT = "usgovernment"


@dataclass(frozen=True)
class _CloudHosts:
    api: str  # regional batch + issueToken host suffix
    stt: str  # regional short-audio host suffix
    custom: str  # custom-subdomain host suffix
    scope: str  # Entra scope for tokens the Speech service accepts


_HOSTS: dict[Cloud, _CloudHosts] = {
    Cloud.PUBLIC: _CloudHosts(
        api="api.cognitive.microsoft.com",
        stt="stt.speech.microsoft.com",
        custom="cognitiveservices.azure.com",
        scope="https://cognitiveservices.azure.com/.default",
    ),
    # Azure operated by 21Vianet (seed 001, "Speech service in sovereign clouds").
    Cloud.CHINA: _CloudHosts(
        api="api.cognitive.azure.cn",
        stt="stt.speech.azure.cn",
        custom="cognitiveservices.azure.cn",
        scope="https://cognitiveservices.azure.cn/.default",
    ),
    Cloud.US_GOVERNMENT: _CloudHosts(
        api="api.cognitive.microsoft.us",
        stt="stt.speech.azure.us",
        custom="cognitiveservices.azure.us",
        scope="https://cognitiveservices.azure.us/.default",
    ),
}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def regional_cloud(endpoint: str) -> Cloud | None:
    """The cloud whose regional host ``endpoint`` is on, or None for any other endpoint.

    A regional host (``https://<region>.api.cognitive.microsoft.com``, ``.azure.cn``,
    ``.microsoft.us``) is what an account without a custom subdomain reports as its
    endpoint; it takes keys, never Entra ID tokens. Every cloud's suffix is checked, so an
    endpoint is recognised even when ``SPEECH_CLOUD`` names another cloud.
    """
    host = (urlsplit(endpoint).hostname or "").lower()
    return next((c for c, h in _HOSTS.items() if host.endswith(f".{h.api}")), None)


def custom_subdomain_url(cloud: Cloud, name: str = "<name>") -> str:
    """The custom-subdomain endpoint of an account called ``name`` in ``cloud``."""
    return f"https://{name}.{_HOSTS[cloud].custom}"


def validate_service_url(url: str, *, what: str) -> str:
    """``url`` if it is absolute and HTTPS (plain HTTP only on loopback, for emulators)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError(f"{what} must be an absolute https:// URL, got {url!r}")
    if parts.scheme == "http" and not _is_loopback(host):
        raise ValueError(f"{what} must use https:// (plain http is allowed only on loopback)")
    return url


@dataclass(frozen=True)
class SpeechEndpoints:
    """The URLs of every Speech surface for one resource."""

    #: ``{endpoint}/speechtotext``: batch transcription, models, fast transcription.
    batch_base: str
    #: Short-audio recognition (``.../cognitiveservices/v1``).
    short_audio_url: str
    #: Key-for-token exchange (``.../sts/v1.0/issueToken``).
    issue_token_url: str
    #: Entra scope for tokens sent to this resource.
    token_scope: str
    cloud: Cloud

    @classmethod
    def from_endpoint(cls, endpoint: str, *, cloud: Cloud | None = None) -> SpeechEndpoints:
        """From the resource endpoint: a custom subdomain, a regional host, or an emulator.

        The cloud is read from the host name when ``cloud`` is not given (a loopback
        emulator counts as public).
        """
        validate_service_url(endpoint, what="Speech endpoint")
        parts = urlsplit(endpoint)
        if parts.query or parts.fragment or parts.path.strip("/"):
            raise ValueError(
                f"Speech endpoint must be scheme and host only (no path or query), got {endpoint!r}"
            )
        host = (parts.hostname or "").lower()
        base = f"{parts.scheme}://{parts.netloc}"
        found = cloud or next(
            (c for c, h in _HOSTS.items() if host.endswith((f".{h.custom}", f".{h.api}"))),
            Cloud.PUBLIC,
        )
        hosts = _HOSTS[found]
        regional = host.endswith(f".{hosts.api}")
        if regional:
            # A regional key endpoint: short audio lives on the region's stt host.
            region = host[: -len(hosts.api) - 1]
            return cls.from_region(region, cloud=found)
        return cls(
            batch_base=f"{base}/speechtotext",
            short_audio_url=f"{base}/stt{SHORT_AUDIO_PATH}",
            issue_token_url=f"{base}{ISSUE_TOKEN_PATH}",
            token_scope=hosts.scope,
            cloud=found,
        )

    @classmethod
    def from_region(cls, region: str, *, cloud: Cloud = Cloud.PUBLIC) -> SpeechEndpoints:
        """From a region identifier such as ``westeurope`` or ``chinanorth2``.

        Regional endpoints take resource keys and key-exchanged tokens; Entra ID
        additionally needs the custom subdomain, see :meth:`from_endpoint`.
        """
        region = region.strip().lower()
        if not _REGION.match(region):
            raise ValueError(f"region must be an Azure region identifier, got {region!r}")
        hosts = _HOSTS[cloud]
        return cls(
            batch_base=f"https://{region}.{hosts.api}/speechtotext",
            short_audio_url=f"https://{region}.{hosts.stt}{SHORT_AUDIO_PATH}",
            issue_token_url=f"https://{region}.{hosts.api}{ISSUE_TOKEN_PATH}",
            token_scope=hosts.scope,
            cloud=cloud,
        )
