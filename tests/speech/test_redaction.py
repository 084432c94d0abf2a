"""The Speech client's errors and log lines carry no key, token or SAS signature."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import httpx
import pytest

from shared.speech.auth import EntraAuth, KeyAuth, Surface
from shared.speech.errors import SpeechError, SpeechHTTPError
from shared.speech.pipeline import Pipeline
from shared.speech.retry import RetryPolicy
from tests.speech.test_auth import SyncCredential
from tests.support.scripted import Recorded, Reply
from tests.support.server import free_port
from tests.test_redact import JWT, KEY, SAS_URL, assert_clean

if TYPE_CHECKING:
    from tests.speech.conftest import Scripted


async def test_service_errors_and_logs_never_carry_secrets(
    scripted: Scripted, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    def handler(req: Recorded) -> Reply:
        echoed = {
            "code": "InvalidRequest",
            "message": f"Cannot read {SAS_URL} with key {KEY} and token Bearer {JWT}",
            "innerError": {"code": "InvalidRecordingsUri", "message": SAS_URL},
        }
        status = 400 if req.method == "POST" else 503
        return Reply(status, echoed)

    with scripted(handler) as (url, _app):
        pipe = Pipeline(http, retry=RetryPolicy(max_attempts=2, backoff_base=0))
        auth = KeyAuth(KEY)
        with pytest.raises(SpeechHTTPError) as bad:
            await pipe.send(
                "POST",
                url + "/speechtotext/transcriptions:submit",
                auth=auth,
                idempotent=False,
                json={"contentUrls": [SAS_URL]},
            )
        # A storage download: the SAS is in the request URL itself.
        with pytest.raises(SpeechError) as down:
            await pipe.send(
                "GET",
                url + "/audio/meeting.wav?" + SAS_URL.split("?", 1)[1],
                auth=None,
                idempotent=True,
            )
        entra = EntraAuth(SyncCredential(), scope="s", resource_id="/subscriptions/x")
        with pytest.raises(SpeechError) as short:
            await pipe.send(
                "GET", url + "/stt", auth=entra, surface=Surface.SHORT_AUDIO, idempotent=True
            )

    for err in (bad.value, down.value, short.value):
        assert_clean(str(err))
        assert_clean(repr(err))
    assert bad.value.inner_code == "InvalidRecordingsUri"
    assert caplog.records, "the failures must have been logged"
    assert any(r.name == "httpx" for r in caplog.records), "httpx request lines are captured"
    assert_clean(caplog.text)
    assert_clean("\n".join(r.getMessage() for r in caplog.records))


async def test_connection_errors_to_sas_urls_are_clean(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"http://127.0.0.1:{free_port()}/audio/meeting.wav?" + SAS_URL.split("?", 1)[1]
    pipe = Pipeline(http, retry=RetryPolicy(max_attempts=2, backoff_base=0))
    with pytest.raises(SpeechError) as info:
        await pipe.send("GET", url, auth=None, idempotent=True)
    assert_clean(str(info.value))
    assert_clean(caplog.text)
