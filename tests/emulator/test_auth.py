"""Authentication like the service: keys, issueToken tokens, Entra tokens, aad#<resource>#.

401 bodies are the Cognitive Services front end's ``{"error": {"code": "401", ...}}``;
a valid identity presenting another resource's id gets 403.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from local.emulator.errors import INVALID_KEY_MESSAGE, MISSING_KEY_MESSAGE
from tests.emulator.conftest import (
    AUDIENCE,
    FIXTURES,
    KEY,
    RESOURCE_ID,
    SECOND_KEY,
    EmulatorServer,
    EntraKeys,
    StartEmulator,
)

LIST = "/speechtotext/transcriptions?api-version=2024-11-15"
SHORT = "/speech/recognition/conversation/cognitiveservices/v1?language=en-US"
WAV = "audio/wav; codecs=audio/pcm; samplerate=16000"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unsigned(claims: dict[str, Any]) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def _hs256_with(secret: bytes, claims: dict[str, Any]) -> str:
    """HS256 "signed" with ``secret`` (the classic RS256/HS256 key-confusion attack)."""
    signing_input = (
        _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        + "."
        + _b64(json.dumps(claims).encode())
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _claims(entra: EntraKeys) -> dict[str, Any]:
    return jwt.decode(entra.token(), options={"verify_signature": False})


def _get(server: EmulatorServer, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(server.url + LIST, headers=headers)


def _short(server: EmulatorServer, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        server.url + SHORT,
        headers={"Content-Type": WAV, **headers},
        content=(FIXTURES / "sentence-08.wav").read_bytes(),
    )


def _front_end_401(response: httpx.Response, message: str | None = None) -> None:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "401"
    if message is not None:
        assert error["message"] == message


def test_keys(emulator: EmulatorServer) -> None:
    assert _get(emulator, {"Ocp-Apim-Subscription-Key": KEY}).status_code == 200
    assert _get(emulator, {"Ocp-Apim-Subscription-Key": SECOND_KEY}).status_code == 200
    _front_end_401(_get(emulator, {}), MISSING_KEY_MESSAGE)
    _front_end_401(_get(emulator, {"Ocp-Apim-Subscription-Key": ""}), MISSING_KEY_MESSAGE)
    _front_end_401(_get(emulator, {"Ocp-Apim-Subscription-Key": "wrong"}), INVALID_KEY_MESSAGE)
    _front_end_401(_short(emulator, {"Ocp-Apim-Subscription-Key": "wrong"}), INVALID_KEY_MESSAGE)


def test_entra_tokens_on_the_rest_api(emulator: EmulatorServer, entra: EntraKeys) -> None:
    ok = _get(emulator, {"Authorization": f"Bearer {entra.token()}"})
    assert ok.status_code == 200
    # The identity endpoint issues aud without a trailing slash; both forms are accepted.
    slash = _get(emulator, {"Authorization": f"Bearer {entra.token(aud=AUDIENCE + '/')}"})
    assert slash.status_code == 200


def _bad_tokens(entra: EntraKeys) -> dict[str, str]:
    now = int(dt.datetime.now(dt.UTC).timestamp())
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = _claims(entra)
    return {
        "garbage": "not-a-jwt",
        "alg none": _unsigned(claims),
        "hs256 with the public key": _hs256_with(entra.public_key_path.read_bytes(), claims),
        "other signer": jwt.encode(claims, other_key, algorithm="RS256"),
        "expired": entra.token(exp=now - 10),
        "not yet valid": entra.token(nbf=now + 600),
        "wrong audience": entra.token(aud="https://storage.azure.com"),
        "no audience": entra.token(aud=None),
        "wrong issuer": entra.token(iss="https://sts.windows.net/someone-else/"),
        "no expiry": entra.token(exp=None),
    }


def test_bad_entra_tokens_are_401(emulator: EmulatorServer, entra: EntraKeys) -> None:
    for name, token in _bad_tokens(entra).items():
        response = _get(emulator, {"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name
        assert "Access token is missing, invalid" in response.json()["error"]["message"], name
    for scheme in ("Basic abc", "Bearer", "Token abc"):
        _front_end_401(_get(emulator, {"Authorization": scheme}))


def test_short_audio_wants_aad_resource_tokens(emulator: EmulatorServer, entra: EntraKeys) -> None:
    token = entra.token()
    ok = _short(emulator, {"Authorization": f"Bearer aad#{RESOURCE_ID}#{token}"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["RecognitionStatus"] == "Success"
    # ARM ids are case-insensitive.
    upper = _short(emulator, {"Authorization": f"Bearer aad#{RESOURCE_ID.upper()}#{token}"})
    assert upper.status_code == 200
    other = RESOURCE_ID.replace("speech-emulator", "someone-else")
    forbidden = _short(emulator, {"Authorization": f"Bearer aad#{other}#{token}"})
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "403"
    _front_end_401(_short(emulator, {"Authorization": f"Bearer {token}"}))
    bad = _bad_tokens(entra)["expired"]
    _front_end_401(_short(emulator, {"Authorization": f"Bearer aad#{RESOURCE_ID}#{bad}"}))
    _front_end_401(_short(emulator, {"Authorization": f"Bearer aad#{RESOURCE_ID}"}))


def test_issue_token(emulator: EmulatorServer) -> None:
    issued = httpx.post(
        emulator.url + "/sts/v1.0/issueToken",
        headers={"Ocp-Apim-Subscription-Key": KEY, "Content-Length": "0"},
    )
    assert issued.status_code == 200
    assert issued.headers["content-type"].startswith("text/plain")
    token = issued.text
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 600
    assert KEY not in json.dumps(claims)
    bearer = {"Authorization": f"Bearer {token}"}
    assert _get(emulator, bearer).status_code == 200
    assert _short(emulator, bearer).status_code == 200

    emulator.clock.advance(dt.timedelta(minutes=10, seconds=1))
    _front_end_401(_get(emulator, bearer))
    _front_end_401(_short(emulator, bearer))

    for headers, message in (
        ({}, MISSING_KEY_MESSAGE),
        ({"Ocp-Apim-Subscription-Key": "wrong"}, INVALID_KEY_MESSAGE),
    ):
        refused = httpx.post(emulator.url + "/sts/v1.0/issueToken", headers=headers)
        _front_end_401(refused, message)


def test_tokens_of_another_emulator_are_refused(
    emulator: EmulatorServer, start_emulator: StartEmulator
) -> None:
    other = start_emulator()
    token = httpx.post(
        other.url + "/sts/v1.0/issueToken", headers={"Ocp-Apim-Subscription-Key": KEY}
    ).text
    _front_end_401(_get(emulator, {"Authorization": f"Bearer {token}"}))


def test_entra_is_refused_without_a_public_key(
    start_emulator: StartEmulator, entra: EntraKeys
) -> None:
    server = start_emulator(jwt_public_key=None)
    _front_end_401(_get(server, {"Authorization": f"Bearer {entra.token()}"}))
