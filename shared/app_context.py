"""Everything a function needs, built once per worker process: settings, clients, ledger.

``await get_context()`` returns the process's :class:`AppContext`, building it on first use
(concurrent first calls share one build). Building happens in a worker thread: it imports
the Azure SDKs (a few hundred milliseconds, paid by the first invocation, not by
``import function_app``), creates clients and makes sure the ledger table exists. It also
installs the process's OpenTelemetry exporters (:func:`shared.telemetry.configure`, once).

Storage is reached the way the Functions host reaches an identity-based connection:
``AudioStorage__blobServiceUri`` / ``__tableServiceUri`` with ``DefaultAzureCredential``
(the user-assigned identity when ``AudioStorage__clientId`` is set). The same credential
serves Speech when ``SPEECH_AUTH_MODE=entra``. Only a development connection string
(``AudioStorage``) uses the account key.

TLS: azure-core's requests transport verifies against ``REQUESTS_CA_BUNDLE`` when set
(requests merges it into ``verify`` because the transport keeps ``trust_env`` on), so the
offline stack's CA is trusted without code here; the tests prove it against Azurite.
"""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.config import load_settings
from shared.redact import get_logger, install_log_redaction, register_secret
from shared.settings import AppSettings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.data.tables import TableClient, TableServiceClient
    from azure.storage.blob import BlobServiceClient

    from shared.pipeline.ledger import Ledger
    from shared.speech import SpeechClients, SpeechSettings
    from shared.storage import BlobStorage

_log = get_logger(__name__)


@dataclass
class AppContext:
    """The clients and settings of one worker process. Close with :meth:`aclose`."""

    settings: AppSettings
    speech: SpeechClients
    blob_service: BlobServiceClient
    table_service: TableServiceClient
    ledger_table: TableClient
    storage: BlobStorage
    ledger: Ledger
    #: The Entra credential shared by storage and Speech; None when nothing needs one.
    credential: TokenCredential | None
    #: Fast transcriptions this process may run at once (``FAST_CONCURRENCY``).
    fast_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(4))

    async def aclose(self) -> None:
        """Close every client and the credential."""
        await self.speech.aclose()
        await asyncio.to_thread(self._close_sync)

    def _close_sync(self) -> None:
        self.ledger_table.close()
        self.table_service.close()
        self.blob_service.close()
        close = getattr(self.credential, "close", None)
        if callable(close):
            close()


def storage_retry_policy(settings: AppSettings, retry_class: Any = None) -> Any:
    """Storage's ExponentialRetry, short, and never retrying an authentication failure.

    The SDK's own policy retries a ``ClientAuthenticationError`` (the credential could not
    get a token) like any error, three times from 15 s: a broken identity then hangs each
    call for ~100 s. azure-core's generic policy (used by the table client) already gives
    up on it at once; this does the same for blobs and queues. ``retry_class`` is the
    package's own ExponentialRetry (default: the blob package's).
    """
    from azure.core.exceptions import ClientAuthenticationError

    if retry_class is None:
        from azure.storage.blob import ExponentialRetry as retry_class

    class FailFastAuthRetry(retry_class):  # type: ignore[misc]
        def increment(
            self, settings: Any, request: Any, response: Any = None, error: Any = None
        ) -> bool:
            if isinstance(error, ClientAuthenticationError):
                return False
            return bool(super().increment(settings, request, response=response, error=error))

    # Typed as int by the SDK; fractions of a second work and are what short waits need.
    backoff: Any = settings.storage_retry_backoff_seconds
    return FailFastAuthRetry(
        initial_backoff=backoff,
        increment_base=2,
        retry_total=settings.storage_retry_total,
        random_jitter_range=min(1, backoff),
    )


def storage_transport(settings: AppSettings) -> dict[str, Any]:
    """Connection and read timeouts of every storage client (blob, table, queue)."""
    return {
        "connection_timeout": settings.storage_connect_timeout_seconds,
        "read_timeout": settings.storage_read_timeout_seconds,
    }


def queue_client(ctx: AppContext, queue: str, **options: Any) -> Any | None:
    """A client of ``queue`` on the app's storage account, keyless unless a dev string is set.

    None when neither a queue service URI nor a connection string is configured.
    """
    from azure.storage.queue import QueueClient

    settings = ctx.settings
    if settings.storage_queue_uri:
        return QueueClient(settings.storage_queue_uri, queue, credential=ctx.credential, **options)
    if settings.storage_connection_string is not None:
        return QueueClient.from_connection_string(
            settings.storage_connection_string.get_secret_value(), queue, **options
        )
    return None


def build_context(
    settings: AppSettings,
    *,
    speech_settings: SpeechSettings | None = None,
    credential: TokenCredential | None = None,
) -> AppContext:
    """Build a context synchronously (it does I/O: run it in a thread from async code).

    ``speech_settings`` defaults to ``settings.speech`` (the ``SPEECH_*`` environment);
    ``credential`` to ``DefaultAzureCredential`` when storage or Speech uses Entra ID.
    """
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient

    from shared.pipeline.ledger import Ledger
    from shared.speech import AuthMode, SpeechClients
    from shared.storage import BlobStorage
    from shared.telemetry import configure as configure_telemetry

    install_log_redaction()
    # Once per process, here rather than at import: the SDK and its exporters cost cold start.
    configure_telemetry(settings)
    # The App Service identity secret: whoever holds it gets the app's tokens, and an
    # identity endpoint's error (quoted by azure-identity) may carry it into a log line.
    register_secret(os.environ.get("IDENTITY_HEADER"))
    speech_settings = speech_settings or settings.speech
    needs_entra = settings.uses_identity or speech_settings.auth_mode is AuthMode.ENTRA
    owned_credential = None
    if credential is None and needs_entra:
        from azure.identity import DefaultAzureCredential

        credential = owned_credential = DefaultAzureCredential(
            managed_identity_client_id=settings.storage_client_id,
            exclude_interactive_browser_credential=True,
        )
    transport = storage_transport(settings)
    blob_retry = storage_retry_policy(settings)
    table_retry: dict[str, Any] = {
        "retry_total": settings.storage_retry_total,
        "retry_backoff_factor": settings.storage_retry_backoff_seconds,
        "retry_backoff_max": 30,
    }
    account_key: str | None = None
    if settings.uses_identity:
        # uses_identity guarantees both URIs.
        assert settings.storage_blob_uri is not None
        assert settings.storage_table_uri is not None
        blob_service = BlobServiceClient(
            settings.storage_blob_uri, credential=credential, retry_policy=blob_retry, **transport
        )
        table_service = TableServiceClient(
            settings.storage_table_uri, credential=credential, **table_retry, **transport
        )
    else:
        assert settings.storage_connection_string is not None  # AppSettings validated it
        connection = settings.storage_connection_string.get_secret_value()
        blob_service = BlobServiceClient.from_connection_string(
            connection, retry_policy=blob_retry, **transport
        )
        table_service = TableServiceClient.from_connection_string(
            connection, **table_retry, **transport
        )
        account_key = getattr(blob_service.credential, "account_key", None)
    try:
        table = table_service.create_table_if_not_exists(settings.ledger_table)
    except BaseException:
        # A failed build is retried by the next call (get_context keeps no failure), so
        # nothing it opened may outlive it: each retry would leak another session.
        blob_service.close()
        table_service.close()
        if owned_credential is not None:
            owned_credential.close()
        raise
    speech = SpeechClients(speech_settings, credential=credential)
    return AppContext(
        settings=settings,
        speech=speech,
        blob_service=blob_service,
        table_service=table_service,
        ledger_table=table,
        storage=BlobStorage(blob_service, settings, account_key=account_key),
        ledger=Ledger(table),
        credential=credential,
        # Bound to the worker's event loop on first use, not here (a thread builds this).
        fast_slots=asyncio.Semaphore(settings.fast_concurrency),
    )


_context: AppContext | None = None
_build_lock = threading.Lock()


def _build_once() -> AppContext:
    global _context
    with _build_lock:
        if _context is None:
            _context = build_context(load_settings(AppSettings))
            _log.info("app context ready (ledger table %s)", _context.settings.ledger_table)
        return _context


async def get_context() -> AppContext:
    """The worker process's context, built on first use; safe under concurrent first calls.

    The build runs in a thread behind a thread lock, so concurrent callers (from any event
    loop or thread) wait for the one build instead of each starting their own, and the
    event loop keeps serving other invocations meanwhile. A failed build raises and is not
    kept: the next call builds again, so the app recovers once its identity, settings or
    storage do (:mod:`shared.http.context` turns the failure into a JSON answer).
    """
    if _context is not None:
        return _context
    return await asyncio.to_thread(_build_once)


async def close_context() -> None:
    """Close and forget the process's context (worker shutdown, tests)."""
    global _context
    with _build_lock:
        context, _context = _context, None
    if context is not None:
        await context.aclose()
