"""The function app's settings, read once from app settings / environment and validated.

Storage is reached through one *connection*, ``AudioStorage``, named the way the Functions
host names identity-based connections: ``AudioStorage__blobServiceUri``,
``AudioStorage__tableServiceUri`` (+ ``__queueServiceUri``, ``__credential``,
``__clientId``). In Azure that is the managed identity and no key exists. A plain
``AudioStorage`` connection string is accepted for development only (Azurite's
well-known account); then the intake signs account-key SAS instead of user-delegation SAS.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from typing import Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.config import load_settings
from shared.speech.config import SpeechSettings
from shared.speech.models import ProfanityFilterMode, PunctuationMode

MAX_SAS_VALIDITY_HOURS = 7 * 24  # a user delegation key lives at most 7 days
#: Largest fast-transcription upload. The how-to for REST 2024-11-15, the version this app
#: speaks, takes "an audio file (less than 2 hours long and less than 200 MB in size)"
#: (https://learn.microsoft.com/azure/ai-services/speech-service/fast-transcription-create;
#: later revisions of the page state larger limits). The handler accepts a body of exactly
#: this many bytes, so the bound is one byte under 200 MB: below the limit whether the page
#: means 200 * 1000**2 or 200 * 1024**2 bytes.
FAST_TRANSCRIPTION_MAX_BYTES = 200 * 1000**2 - 1


class Routing(StrEnum):
    """Which Speech API transcribes an uploaded file (``ROUTING``; blob metadata ``mode``)."""

    #: Batch transcription: jobs of many files, cheapest per request, minutes to hours.
    BATCH = "batch"
    #: Fast transcription: one synchronous request per file, seconds.
    FAST = "fast"
    #: Fast when the file is provably short and its options suit it, else batch.
    AUTO = "auto"


#: The fast-transcription length limit of REST 2024-11-15: "less than 2 hours" (see above).
FAST_TRANSCRIPTION_MAX_SECONDS = 2 * 3600.0


class AppSettings(BaseSettings):
    """Every setting the app reads except the Speech client's ``SPEECH_*`` (:attr:`speech`)."""

    # An app setting left empty (local.settings.json.example lists them all) counts as unset.
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, env_ignore_empty=True)

    # -- storage connection -------------------------------------------------------------
    storage_blob_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("AudioStorage__blobServiceUri")
    )
    storage_table_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("AudioStorage__tableServiceUri")
    )
    storage_queue_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("AudioStorage__queueServiceUri")
    )
    #: Client id of a user-assigned managed identity; empty for system-assigned.
    storage_client_id: str | None = Field(
        default=None, validation_alias=AliasChoices("AudioStorage__clientId")
    )
    #: Development only: a connection string with an account key (Azurite).
    storage_connection_string: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("AudioStorage")
    )

    # -- containers and table -----------------------------------------------------------
    input_container: str = Field(default="audio-input", min_length=3, max_length=63)
    requests_container: str = Field(default="transcription-requests", min_length=3, max_length=63)
    output_container: str = Field(default="transcripts", min_length=3, max_length=63)
    ledger_table: str = Field(default="transcriptionledger", pattern=r"^[A-Za-z][A-Za-z0-9]{2,62}$")

    # -- transcription defaults (blob metadata and manifests override them) --------------
    default_locale: str = Field(default="en-US", min_length=2)
    default_profanity: ProfanityFilterMode = ProfanityFilterMode.MASKED
    default_punctuation: PunctuationMode = PunctuationMode.DICTATED_AND_AUTOMATIC
    default_word_timestamps: bool = True
    default_diarization: bool = False
    default_max_speakers: int | None = Field(default=None, ge=2, le=35)
    #: Self URL of a base or custom model; empty means the locale's default base model.
    default_model: str | None = None
    time_to_live_hours: int = Field(default=48, ge=6, le=744)
    #: How long the audio SAS stays valid: jobs may wait hours before the service starts them.
    sas_validity_hours: int = Field(default=48, ge=1, le=MAX_SAS_VALIDITY_HOURS)
    max_audio_bytes: int = Field(default=1024**3, gt=0, le=1024**3)
    #: Largest manifest (JSON) the bulk intake reads; it is read into memory, audio never is.
    manifest_max_bytes: int = Field(default=4 * 1024**2, gt=0, le=64 * 1024**2)
    #: Most files one manifest may name or expand to (``files`` plus ``prefix``).
    manifest_max_files: int = Field(default=10_000, ge=1, le=100_000)
    #: Parallel storage calls of one manifest intake (file checks, ledger rows).
    intake_concurrency: int = Field(default=16, ge=1, le=64)
    #: Attempts at one blob's intake (host retries and poller recovery together) before it
    #: is given up with an error report, so a persistent failure cannot loop forever.
    intake_max_attempts: int = Field(default=6, ge=1, le=100)

    # -- storage client behaviour --------------------------------------------------------
    #: Seconds to establish a connection to Blob/Table storage.
    storage_connect_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    #: Seconds to wait for data on an open connection (per read, not per transfer).
    storage_read_timeout_seconds: float = Field(default=60.0, gt=0, le=600)
    #: Retries per storage call after the first attempt. The SDK default (ExponentialRetry,
    #: 3 retries from 15 s) turns a broken identity into a ~100 s hang; auth failures are
    #: never retried here and the rest back off from ``storage_retry_backoff_seconds``.
    storage_retry_total: int = Field(default=3, ge=0, le=10)
    storage_retry_backoff_seconds: float = Field(default=1.0, ge=0, le=30)

    # -- poller -------------------------------------------------------------------------
    #: NCRONTAB (six fields, seconds first) of the poller timer; the trigger reads it too.
    poll_schedule: str = "0 * * * * *"
    poll_min_interval_seconds: float = Field(default=60.0, gt=0)
    poll_max_interval_seconds: float = Field(default=600.0, gt=0)
    poll_concurrency: int = Field(default=8, ge=1, le=64)
    poll_batch_size: int = Field(default=200, ge=1, le=1000)
    stuck_after_hours: float = Field(default=24.0, gt=0)
    #: An intake that claimed a blob but never recorded a job is retried after this long.
    intake_stale_minutes: float = Field(default=10.0, gt=0)

    # -- submitter ----------------------------------------------------------------------
    #: NCRONTAB of the submitter timer, which turns queued files into jobs.
    submit_schedule: str = "*/15 * * * * *"
    #: Files per job at most: the service takes up to 1000 ``contentUrls`` per request.
    max_files_per_job: int = Field(default=1000, ge=1, le=1000)
    #: A group is submitted once full, or once its oldest file has waited this long.
    batch_window_seconds: float = Field(default=60.0, ge=0, le=3600)

    #: Batch API requests the app may make per minute, all timers and instances together:
    #: 90 % of the documented 600 (100 per 10 s), spent in 10-second windows.
    speech_requests_per_minute: int = Field(default=540, ge=6, le=60_000)

    # -- retries and finishing ------------------------------------------------------------
    #: Jobs one file version may be submitted in when it keeps failing transiently (the
    #: job vanished; InvalidUri, Internal, Timeout, Transient); then it is reported Failed.
    retry_max_submissions: int = Field(default=4, ge=1, le=20)
    #: Wait before the first resubmission; it doubles for each further one.
    retry_backoff_seconds: float = Field(default=300.0, gt=0, le=86_400)
    #: Attempts at collecting a finished job's results and writing its outputs; then its
    #: unfinished files are reported Failed (OutputWriteFailed) and the job is deleted.
    finish_max_attempts: int = Field(default=5, ge=1, le=50)

    # -- routing and the fast lane ----------------------------------------------------------
    routing: Routing = Routing.BATCH
    #: In ``auto``, files whose header proves them at most this long go to fast transcription.
    fast_max_seconds: float = Field(default=120.0, gt=0, le=FAST_TRANSCRIPTION_MAX_SECONDS)
    #: Fast transcriptions one instance runs at once (each streams one blob to Speech).
    fast_concurrency: int = Field(default=4, ge=1, le=64)
    #: Fast-transcription requests per minute, all instances together: 90 % of the
    #: documented 600 per minute, spent in 10-second windows like the batch budget.
    fast_requests_per_minute: int = Field(default=540, ge=6, le=60_000)

    # -- Speech web hooks ----------------------------------------------------------------
    #: ``on`` registers a ``transcriptionCompletion`` web hook; polling becomes the backstop.
    speech_webhooks: bool = Field(default=False, validation_alias=AliasChoices("SPEECH_WEBHOOKS"))
    #: The HMAC key the service signs deliveries with (a Key Vault reference in Azure).
    speech_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SPEECH_WEBHOOK_SECRET")
    )
    #: Where the service delivers; empty means ``https://$WEBSITE_HOSTNAME/api/speech/webhooks``.
    speech_webhook_url: str | None = Field(
        default=None, validation_alias=AliasChoices("SPEECH_WEBHOOK_URL")
    )
    #: The host name App Service gives the app (set by the platform, not by us).
    website_hostname: str | None = Field(
        default=None, validation_alias=AliasChoices("WEBSITE_HOSTNAME")
    )
    #: How often the sweep checks that the hook exists and is healthy (one request).
    webhook_check_seconds: float = Field(default=300.0, ge=1, le=86_400)
    #: The poll interval of a job while a healthy hook will announce its completion.
    webhook_poll_interval_seconds: float = Field(default=900.0, gt=0, le=86_400)

    # -- operating it: events, actions, the status page, cost ---------------------------
    #: The Storage queue (AudioStorage account) every terminal state is published to as a
    #: CloudEvents 1.0 event, at least once.
    events_queue: str = Field(
        default="transcription-events", pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"
    )
    #: An Event Grid custom topic's endpoint to publish the same events to (Entra auth);
    #: empty publishes to the queue only.
    event_grid_topic_endpoint: str | None = None
    #: NCRONTAB of the timer that publishes the ledger's outbox of events.
    events_schedule: str = "*/10 * * * * *"
    #: Files one bulk re-run (``POST /api/retry``) re-queues at most.
    retry_max_per_call: int = Field(default=100, ge=1, le=1000)
    #: Lifetime of the read-only download links the status page hands out.
    download_sas_minutes: int = Field(default=15, ge=1, le=24 * 60)
    #: Price of an hour of audio per route, for the cost estimate; unset shows none
    #: (take them from the Speech pricing page for your region and agreement).
    price_per_audio_hour_batch: float | None = Field(default=None, ge=0)
    price_per_audio_hour_fast: float | None = Field(default=None, ge=0)
    #: The currency the prices are in.
    cost_currency: str = Field(default="USD", min_length=3, max_length=3)

    # -- reconciliation sweep -------------------------------------------------------------
    #: NCRONTAB of the sweep timer: it compares the containers with the ledger.
    sweep_schedule: str = "30 */5 * * * *"
    #: Blobs listed per page, and pages per container per tick (the work bound of a tick).
    sweep_page_size: int = Field(default=1000, ge=10, le=5000)
    sweep_pages_per_tick: int = Field(default=1, ge=1, le=100)
    #: A blob younger than this is left to its own event (which is usually on its way).
    sweep_grace_seconds: float = Field(default=300.0, ge=0, le=86_400)
    #: The blob trigger's poison queue, on the AudioStorage account.
    poison_queue: str = Field(
        default="webjobs-blobtrigger-poison", pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"
    )

    # -- HTTP ---------------------------------------------------------------------------
    recognize_max_seconds: float = Field(default=60.0, gt=0, le=60)
    #: Largest /api/recognize body, a guard next to the duration limit: 60 s of 16 kHz mono
    #: 16-bit PCM is 1.92 MB plus header; Ogg Opus at the documented 256 kbit/s is as much.
    recognize_max_bytes: int = Field(default=4 * 1024**2, ge=64 * 1024, le=32 * 1024**2)
    #: Largest /api/transcribe upload, refused with 413 before or while it streams; at most
    #: :data:`FAST_TRANSCRIPTION_MAX_BYTES`. The documented 2-hour limit is left to Speech:
    #: the handler sees bytes, and only a WAV header would tell the duration up front.
    transcribe_max_bytes: int = Field(
        default=FAST_TRANSCRIPTION_MAX_BYTES, gt=0, le=FAST_TRANSCRIPTION_MAX_BYTES
    )

    @model_validator(mode="after")
    def _storage_configured(self) -> Self:
        identity = self.storage_blob_uri and self.storage_table_uri
        if not identity and not self.storage_connection_string:
            raise ValueError(
                "set AudioStorage__blobServiceUri and AudioStorage__tableServiceUri "
                "(managed identity), or AudioStorage (a development connection string)"
            )
        if self.poll_min_interval_seconds > self.poll_max_interval_seconds:
            raise ValueError("POLL_MIN_INTERVAL_SECONDS must not exceed POLL_MAX_INTERVAL_SECONDS")
        if self.speech_webhooks:
            secret = (
                self.speech_webhook_secret.get_secret_value() if self.speech_webhook_secret else ""
            )
            if secret.startswith("@Microsoft.KeyVault("):
                # App Service hands the reference over as text when it cannot resolve it
                # (the identity's role not effective yet): never sign with that.
                raise ValueError(
                    "SPEECH_WEBHOOK_SECRET is an unresolved Key Vault reference: check the "
                    "app identity's Key Vault Secrets User role and the secret URI"
                )
            if len(secret) < 16:
                raise ValueError(
                    "SPEECH_WEBHOOKS=on needs SPEECH_WEBHOOK_SECRET of at least 16 characters "
                    "(the key the service signs its deliveries with)"
                )
            if not (self.speech_webhook_url or self.website_hostname):
                raise ValueError(
                    "SPEECH_WEBHOOKS=on needs SPEECH_WEBHOOK_URL (or WEBSITE_HOSTNAME, which "
                    "App Service sets): where the service delivers its events"
                )
        return self

    @property
    def webhook_url(self) -> str | None:
        """The URL the web hook delivers to, or None when hooks are off."""
        if not self.speech_webhooks:
            return None
        if self.speech_webhook_url:
            return self.speech_webhook_url
        return f"https://{self.website_hostname}/api/speech/webhooks"

    @cached_property
    def speech(self) -> SpeechSettings:
        """The ``SPEECH_*`` settings, validated on first use."""
        return load_settings(SpeechSettings)

    @property
    def uses_identity(self) -> bool:
        """True when storage is reached with Entra tokens (the production path)."""
        return bool(self.storage_blob_uri and self.storage_table_uri)
