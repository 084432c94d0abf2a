"""No key, token or SAS signature reaches a log line or an exception message."""

from __future__ import annotations

import pytest

from shared.redact import redact, redact_url

KEY = "5ecre7k3y5ecre7k3y5ecre7k3y5ecre"
SIG = "s1gN4tur3%2Bv4lu3%3D"
JWT = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL3gifQ.c2lnbmF0dXJl"
SAS_URL = (
    "https://acct.blob.core.windows.net/audio/meeting.wav"
    f"?skoid=11111111-2222&sktid=3333&sv=2025-01-05&se=2026-11-22T00%3A00%3A00Z&sp=r&sig={SIG}"
)
SECRETS = [KEY, SIG, "s1gN4tur3", JWT, "entra-token-abc", "11111111-2222"]


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"secret {secret[:6]}... leaked: {text}"


@pytest.mark.parametrize(
    "text",
    [
        f"GET {SAS_URL} failed",
        f"Authorization: Bearer {JWT}",
        f"Authorization: Bearer aad#/subscriptions/x#{JWT}",
        f"token {JWT} expired",
        f'{{"Ocp-Apim-Subscription-Key": "{KEY}"}}',
        f"DefaultEndpointsProtocol=https;AccountName=a;AccountKey={KEY};",
    ],
)
def test_redact_scrubs_secret_shapes(text: str) -> None:
    assert_clean(redact(text))


def test_redact_url_keeps_only_safe_query_values() -> None:
    safe = redact_url(SAS_URL)
    assert_clean(safe)
    assert safe.startswith("https://acct.blob.core.windows.net/audio/meeting.wav?")
    kept = redact_url("https://h/speechtotext/transcriptions?api-version=2024-11-15&top=5&code=x")
    assert "api-version=2024-11-15" in kept
    assert "top=5" in kept
    assert "code=x" not in kept
