"""The emulator's settings: ``EMULATOR_*`` environment variables, checked at start-up.

Every problem is reported as :class:`SettingsError` whose message names the environment
variable to fix, so a bad stack configuration fails before the first request instead of
answering 401 or 500 later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "EMULATOR_"

#: Microsoft's documented batch REST quota: 100 requests per 10 seconds per resource
#: ("Speech service quotas and limits", batch transcription table).
DEFAULT_QUOTA_REQUESTS = 100
DEFAULT_QUOTA_WINDOW_SECONDS = 10.0
#: Microsoft's documented fast transcription quota: 600 requests per minute per resource
#: ("Speech service quotas and limits", fast transcription table).
DEFAULT_FAST_QUOTA_REQUESTS = 600
DEFAULT_FAST_QUOTA_WINDOW_SECONDS = 60.0
#: Four hours: the longest audio the emulator transcribes in a batch job by default.
DEFAULT_MAX_AUDIO_SECONDS = 4 * 3600.0

#: ``errorKind`` values an injected per-file failure may carry (``EMULATOR_FAIL_FILES_KIND``,
#: ``fail_files_kind``): the kinds the emulator writes into ``report.json`` itself (see
#: ``jobs.py``) plus ``Timeout``, ``Transient`` and ``InvalidData`` for retry tests.
FileFailureKind = Literal[
    "InvalidUri",
    "InvalidAudioFormat",
    "EmptyAudioFile",
    "AudioLengthLimitExceeded",
    "BadChannelConfiguration",
    "InvalidData",
    "Internal",
    "Timeout",
    "Transient",
]
FILE_FAILURE_KINDS: tuple[str, ...] = get_args(FileFailureKind)

#: Statuses a forced fast transcription failure (``fast_fail_status``) may answer with: the
#: throttling and server errors a client of ``transcriptions:transcribe`` has to retry.
FastFailStatus = Literal[429, 500, 502, 503]
FAST_FAIL_STATUSES: tuple[int, ...] = get_args(FastFailStatus)


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the ``EMULATOR_*`` variable."""


def _split_csv(value: object) -> object:
    """Comma-separated text -> list of non-empty, stripped items (lists pass through)."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class EmulatorSettings(BaseSettings):
    """All settings of the Speech emulator, read from ``EMULATOR_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    #: Subscription keys accepted in ``Ocp-Apim-Subscription-Key`` (comma-separated).
    keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: PEM public key that verifies the local identity endpoint's RS256 tokens.
    jwt_public_key: Path | None = None
    #: Expected ``iss`` of Entra-style tokens, e.g. ``https://sts.windows.net/<tenant>/``.
    jwt_issuer: str | None = None
    #: Accepted ``aud`` values (comma-separated); compared without a trailing slash.
    jwt_audiences: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["https://cognitiveservices.azure.com"]
    )
    #: ARM id of the emulated Speech resource, expected in ``Bearer aad#<id>#<token>``.
    resource_id: str | None = None
    #: PEM bundle trusted for HTTPS to storage (Azurite); the system store when unset.
    ca_bundle: Path | None = None
    #: Where result files are kept (one folder per transcription).
    state_dir: Path = Path(".local/speech-emulator")
    #: Recognition engine: ``whisper`` (real ASR) or ``fixed`` (instant, fixed text).
    engine: Literal["whisper", "fixed"] = "whisper"
    #: How many batch jobs run at the same time.
    workers: int = Field(default=1, ge=1, le=64)
    #: Longest audio file a batch job accepts; longer files fail with AudioLengthLimitExceeded.
    max_audio_seconds: float = Field(default=DEFAULT_MAX_AUDIO_SECONDS, gt=0)
    #: Base URL put into ``self``/links; by default the scheme and Host of each request.
    public_url: str | None = None
    #: JSON file of custom models to serve (a list of Model objects, v3.0 or 2024-11-15).
    custom_models: Path | None = None
    #: Retry-After (seconds) sent with transcriptions that are not finished yet.
    retry_after_seconds: int = Field(default=1, ge=0)
    #: How often expired transcriptions (timeToLiveHours after completion) are deleted.
    sweep_interval_seconds: float = Field(default=60.0, gt=0)
    #: Largest short-audio body accepted; anything bigger is refused without buffering it.
    short_audio_max_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    # Fault injection defaults (changeable at run time through /admin/faults).
    quota_enabled: bool = True
    quota_requests: int = Field(default=DEFAULT_QUOTA_REQUESTS, ge=1)
    quota_window_seconds: float = Field(default=DEFAULT_QUOTA_WINDOW_SECONDS, gt=0)
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    latency_ms: int = Field(default=0, ge=0)
    job_start_delay_seconds: float = Field(default=0.0, ge=0.0)
    #: ``*`` fails every job; any other value is an fnmatch pattern on ``displayName``.
    fail_jobs: str | None = None
    #: fnmatch pattern on each input's blob path (URL path, no query, percent-decoded, e.g.
    #: ``*/chaos/*.wav``): matching files fail in the report with ``fail_files_kind``.
    fail_files: str | None = None
    fail_files_kind: FileFailureKind = "InvalidUri"
    #: How often each matching path fails before it is transcribed (0 = every time).
    fail_files_times: int = Field(default=1, ge=0)
    #: The fast transcription quota (600 requests per 60 seconds per caller by default); off
    #: unless asked for, so suites that transcribe a lot are not throttled by surprise.
    fast_quota_enabled: bool = False
    fast_quota_requests: int = Field(default=DEFAULT_FAST_QUOTA_REQUESTS, ge=1)
    fast_quota_window_seconds: float = Field(default=DEFAULT_FAST_QUOTA_WINDOW_SECONDS, gt=0)
    #: Status the next fast transcription requests fail with (429, 500, 502 or 503), or unset.
    fast_fail_status: FastFailStatus | None = None
    #: How many fast requests fail with ``fast_fail_status`` (0 = every one while it is set).
    fast_fail_times: int = Field(default=0, ge=0)
    # Web hooks (see ``webhooks.py``).
    #: Tries per delivery (and per challenge) before it counts as failed.
    webhook_delivery_attempts: int = Field(default=3, ge=1, le=20)
    #: Wait before the first retry; each further retry waits twice as long as the previous.
    webhook_retry_seconds: float = Field(default=1.0, ge=0)
    #: Timeout of one callback request (connect, read and write each).
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    #: Consecutive failed deliveries (each after its retries) that disable a web hook.
    webhook_failures_to_disable: int = Field(default=3, ge=1)

    @field_validator("keys", "jwt_audiences", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("jwt_audiences")
    @classmethod
    def _audiences(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one audience is required")
        return [a.rstrip("/") for a in value]

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("fail_jobs", "fail_files")
    @classmethod
    def _fail_patterns(cls, value: str | None) -> str | None:
        return value if value is not None and value.strip() else None

    @field_validator("fast_fail_status", mode="before")
    @classmethod
    def _fast_fail_status(cls, value: object) -> object:
        # Environment values arrive as text, and integer Literals do not coerce text.
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return None
            return int(text) if text.isdigit() else text
        return value

    @model_validator(mode="after")
    def _files_exist(self) -> EmulatorSettings:
        for name in ("jwt_public_key", "ca_bundle", "custom_models"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ValueError(f"{ENV_PREFIX}{name.upper()}: file not found: {path}")
        return self


def load_settings() -> EmulatorSettings:
    """Read the settings from the environment; raise :class:`SettingsError` naming the variable."""
    try:
        return EmulatorSettings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            location = [str(part) for part in error["loc"] if isinstance(part, str)]
            message = str(error["msg"])
            if location:
                problems.append(f"{ENV_PREFIX}{location[0].upper()}: {message}")
            else:
                # Model-level checks already name the variable in their message.
                problems.append(message.removeprefix("Value error, "))
        raise SettingsError("invalid emulator settings: " + "; ".join(problems)) from None
