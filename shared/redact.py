"""Keep keys, tokens and SAS signatures out of log lines and exception messages.

Three layers, because one is never enough: URLs are logged through :func:`redact_url`
(only an allow-list of query parameters keeps its value); every message the clients
build passes :func:`redact` (pattern scrub plus the exact secrets registered at
start-up); and :func:`install_log_redaction` puts the same scrub on the loggers of
httpx and the Azure SDK, which log full request URLs at INFO.
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "REDACTED"

# Query parameters whose values are never secret and help when reading logs.
_SAFE_QUERY_KEYS = frozenset(
    {
        "api-version",
        "top",
        "skip",
        "filter",
        "sasLifetimeMinutes",
        "language",
        "format",
        "profanity",
        "cid",
        "kind",
    }
)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # SAS and any signed query: the signature and the delegation key identity.
    (
        re.compile(
            r"(?i)\b(sig|signature|skoid|sktid|skt|ske|sks|skv|saoid|suoid|code)=[^&\s\"'<>]+"
        ),
        rf"\1={REDACTED}",
    ),
    (re.compile(r"(?i)\b(bearer)\s+[^\s\"',]+"), rf"\1 {REDACTED}"),
    (re.compile(r"aad#[^#\s]*#[^\s\"',]+"), f"aad#{REDACTED}"),
    (re.compile(r"\beyJ[\w-]{5,}\.[\w-]+\.[\w-]*"), REDACTED),
    (
        re.compile(
            r"(?i)(ocp-apim-subscription-key|x-identity-header|api[-_]?key)([\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"
        ),
        rf"\1\2{REDACTED}",
    ),
    (re.compile(r"(?i)(AccountKey|SharedAccessSignature)=[^;\s\"']+"), rf"\1={REDACTED}"),
)

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Scrub this exact value from every message from now on (keys, header secrets)."""
    # Short strings would mangle ordinary words; real keys and tokens are long.
    if value and len(value) >= 8:
        with _secrets_lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """``text`` with every known secret and secret-looking token replaced."""
    for secret in tuple(_secrets):
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_url(url: str) -> str:
    """``url`` safe to log: allow-listed query values kept, every other value replaced."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (k, v if k in _SAFE_QUERY_KEYS else REDACTED)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    safe = urlunsplit(parts._replace(query=urlencode(query, safe="'$ ")))
    return redact(safe)


class RedactingFilter(logging.Filter):
    """A logging filter that rewrites each record's message through :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logger's problem, never ours to raise
            return True
        clean = redact(message)
        if clean != message:
            record.msg = clean
            record.args = None
        return True


_FILTER = RedactingFilter()
# Logger filters are not inherited by child loggers, so each name that logs URLs or
# headers is listed exactly: httpx logs every request URL at INFO.
_THIRD_PARTY_LOGGERS = (
    "httpx",
    "azure.core.pipeline.policies.http_logging_policy",
    # azure-identity logs a failed token request's response text at WARNING from these
    # (a filter on a logger does not reach its children's records, so each is named).
    "azure.identity._credentials.chained",
    "azure.identity._credentials.default",
    "azure.identity._credentials.managed_identity",
    "azure.identity._internal.decorators",
    "azure.identity._internal.get_token_mixin",
    "azure.identity._internal.msal_managed_identity_client",
)


def get_logger(name: str) -> logging.Logger:
    """A logger whose records are scrubbed by :func:`redact` before any handler sees them."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


def install_log_redaction() -> None:
    """Put the scrub on the third-party loggers that see URLs and headers. Idempotent."""
    for name in _THIRD_PARTY_LOGGERS:
        get_logger(name)
