"""Callback signatures: base64(HMAC-SHA256(secret, body)), checked in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from shared.speech.webhook_signature import EVENT_HEADER, SIGNATURE_HEADER, sign, verify

SECRET = "wh-s3cret-9f2c4e7a1b"
# A ping callback body: the hook itself, as the spec says (WebHooks_Ping).
BODY = json.dumps(
    {
        "self": "https://westus.api.cognitive.microsoft.com/speechtotext/webhooks/2e856efe-ef53-465a-a632-6a084c1d349d",
        "displayName": "TranscriptionCompletionWebHook",
        "webUrl": "https://contoso.example/api/speech-callback",
        "events": {"transcriptionCompletion": True},
    },
    separators=(",", ":"),
).encode()


def expected(secret: str, body: bytes) -> str:
    """The signature computed independently of the module under test."""
    mac = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def test_sign_matches_an_independent_hmac_sha256_base64() -> None:
    assert sign(SECRET, BODY) == expected(SECRET, BODY)


def test_sign_matches_a_fixed_vector() -> None:
    # RFC 4231 test case 2 (key "Jefe"), whose HMAC-SHA256 is published in hex.
    digest = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert sign("Jefe", b"what do ya want for nothing?") == base64.b64encode(
        bytes.fromhex(digest)
    ).decode("ascii")


def test_sign_uses_the_utf8_bytes_of_the_secret() -> None:
    assert sign("sécrét-ключ", BODY) == expected("sécrét-ключ", BODY)


def test_a_good_signature_verifies() -> None:
    assert verify(SECRET, BODY, expected(SECRET, BODY)) is True


def test_surrounding_whitespace_in_the_header_is_tolerated() -> None:
    assert verify(SECRET, BODY, f" {expected(SECRET, BODY)}\r\n") is True


@pytest.mark.parametrize(
    "signature",
    [
        expected("another-secret", BODY),
        expected(SECRET, BODY + b" "),
        expected(SECRET, BODY).lower(),
        base64.b64encode(b"\x00" * 32).decode(),
    ],
    ids=["other-secret", "other-body", "case-changed", "zero-digest"],
)
def test_a_bad_signature_fails(signature: str) -> None:
    assert verify(SECRET, BODY, signature) is False


def test_a_signature_of_another_body_fails() -> None:
    other = BODY.replace(b"transcriptionCompletion", b"transcriptionDeletion")
    assert verify(SECRET, other, sign(SECRET, BODY)) is False


@pytest.mark.parametrize("signature", [None, ""], ids=["missing", "empty"])
def test_a_missing_signature_fails(signature: str | None) -> None:
    assert verify(SECRET, BODY, signature) is False


@pytest.mark.parametrize(
    "signature",
    [
        "not base64!",
        expected(SECRET, BODY).rstrip("="),  # padding removed
        expected(SECRET, BODY)[:-4],  # truncated
        base64.b64encode(b"\x01" * 31).decode(),  # decodes, but not 32 bytes
        base64.b64encode(b"\x01" * 64).decode(),
        expected(SECRET, BODY).replace("+", "-").replace("/", "_") + "é",  # non-ASCII
        "sha256=" + expected(SECRET, BODY),
        hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest(),  # hex, not base64
    ],
    ids=["junk", "unpadded", "truncated", "short", "long", "non-ascii", "prefixed", "hex"],
)
def test_a_malformed_signature_fails(signature: str) -> None:
    assert verify(SECRET, BODY, signature) is False


def test_an_empty_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="secret"):
        sign("", BODY)
    with pytest.raises(ValueError, match="secret"):
        verify("", BODY, expected("", BODY))


def test_the_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    assert verify(SECRET, BODY, expected(SECRET, BODY)) is True
    assert len(seen) == 1


def test_header_names() -> None:
    assert SIGNATURE_HEADER == "X-MicrosoftSpeechServices-Signature"
    assert EVENT_HEADER == "X-MicrosoftSpeechServices-Event"
