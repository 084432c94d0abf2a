"""Model look-ups warn when the chosen model's transcription deprecation is near or past."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx
import pytest

from shared.speech.auth import KeyAuth
from shared.speech.endpoints import SpeechEndpoints
from shared.speech.models import BaseSpeechModel
from shared.speech.models_client import ModelDeprecationWarning, ModelsClient, deprecation_notice
from tests.support.scripted import Reply

if TYPE_CHECKING:
    from tests.speech.conftest import Scripted


NOW = datetime(2026, 11, 21, tzinfo=UTC)
MODEL = "827712a5-f942-4997-91c3-7c6cde35600b"


def model(when: datetime | None) -> BaseSpeechModel:
    dates = {"transcriptionDateTime": when.isoformat()} if when else {}
    return BaseSpeechModel.model_validate(
        {"displayName": "en-US base", "locale": "en-US", "properties": {"deprecationDates": dates}}
    )


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (timedelta(days=-1), "can no longer be used for transcription since 2026-11-20"),
        (timedelta(0), "can no longer be used"),
        (timedelta(days=10), "stops transcribing on 2026-12-01 (10 days left)"),
        (timedelta(days=30), "(30 days left)"),
        (timedelta(days=31), None),
    ],
)
def test_deprecation_window(offset: timedelta, expected: str | None) -> None:
    notice = deprecation_notice(model(NOW + offset), now=NOW)
    if expected is None:
        assert notice is None
    else:
        assert notice is not None
        assert expected in notice
        assert notice.startswith("en-US base")


def test_no_date_no_notice() -> None:
    assert deprecation_notice(model(None), now=NOW) is None


async def test_get_warns_and_logs_only_for_models_near_retirement(
    scripted: Scripted, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    soon = datetime.now(UTC) + timedelta(days=5)
    later = datetime.now(UTC) + timedelta(days=400)
    bodies = iter([model(soon).to_dict(), model(later).to_dict()])
    with scripted(lambda _r: Reply(200, next(bodies))) as (url, _app):
        client = ModelsClient(
            SpeechEndpoints.from_endpoint(url), KeyAuth("k" * 32), http_client=http
        )
        with pytest.warns(ModelDeprecationWarning, match="stops transcribing"):
            await client.get_base_model(MODEL)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            await client.get_base_model(MODEL)
    assert "stops transcribing" in caplog.text
