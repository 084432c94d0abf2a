"""App-setting limits that come from the service's documentation, not from taste."""

from __future__ import annotations

import pytest

from shared.config import SettingsError, load_settings
from shared.settings import FAST_TRANSCRIPTION_MAX_BYTES, AppSettings

# "An audio file (less than 2 hours long and less than 200 MB in size)": the fast
# transcription how-to for REST 2024-11-15, the API version the app speaks.
DOCUMENTED_LIMIT = 200 * 1000**2


@pytest.fixture(autouse=True)
def storage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRANSCRIBE_MAX_BYTES", raising=False)
    monkeypatch.setenv("AudioStorage", "UseDevelopmentStorage=true")


def test_transcribe_uploads_stay_below_the_documented_fast_transcription_size() -> None:
    # The handler accepts a body of exactly transcribe_max_bytes, so the setting is the
    # largest accepted size and must itself be below the limit (decimal and binary MB).
    settings = load_settings(AppSettings)
    assert settings.transcribe_max_bytes == FAST_TRANSCRIPTION_MAX_BYTES
    assert settings.transcribe_max_bytes < DOCUMENTED_LIMIT
    assert settings.transcribe_max_bytes == DOCUMENTED_LIMIT - 1


@pytest.mark.parametrize("value", [str(DOCUMENTED_LIMIT), "500000000"])
def test_a_transcribe_limit_at_or_beyond_the_service_limit_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("TRANSCRIBE_MAX_BYTES", value)
    with pytest.raises(SettingsError, match="TRANSCRIBE_MAX_BYTES"):
        load_settings(AppSettings)


def test_a_smaller_transcribe_limit_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSCRIBE_MAX_BYTES", "100000000")
    assert load_settings(AppSettings).transcribe_max_bytes == 100_000_000
