"""The local managed-identity endpoint, driven by azure-identity itself."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.testclient import TestClient

from local.identity import (
    API_VERSION,
    MAX_TOKEN_LIFETIME,
    TokenIssuer,
    audience_for,
    create_app,
    ensure_identity,
    key_id,
    load_identity,
)
from local.stack import StackInfo
from tests.support.server import serve

STORAGE = "https://storage.azure.com"
SPEECH = "https://cognitiveservices.azure.com"


def public_key(info: StackInfo) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(Path(info.env["LOCAL_JWT_PUBLIC_KEY"]).read_bytes())
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def verify(info: StackInfo, token: str, audience: str) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(
        token,
        public_key(info),
        algorithms=["RS256"],
        audience=audience,
        issuer=info.env["LOCAL_JWT_ISSUER"],
    )
    return claims


@pytest.mark.parametrize(
    ("scope", "audience"),
    [(f"{STORAGE}/.default", STORAGE), (f"{SPEECH}/.default", SPEECH), (f"{SPEECH}/", SPEECH)],
)
def test_managed_identity_credential_gets_a_verifiable_token(
    local_stack_no_emulator: StackInfo, scope: str, audience: str
) -> None:
    info = local_stack_no_emulator
    before = int(time.time())
    token = info.credential().get_token(scope)

    claims = verify(info, token.token, audience)
    tenant = info.env["LOCAL_TENANT_ID"]
    assert claims["iss"] == f"https://sts.windows.net/{tenant}/"
    assert claims["tid"] == tenant
    assert claims["oid"] == claims["sub"] == info.env["LOCAL_IDENTITY_OBJECT_ID"]
    assert claims["appid"] == info.env["LOCAL_IDENTITY_CLIENT_ID"]
    assert claims["ver"] == "1.0"
    iat, nbf, exp = (int(str(claims[name])) for name in ("iat", "nbf", "exp"))
    assert before <= iat == nbf
    assert exp - iat == 3600
    assert token.expires_on == exp
    header = jwt.get_unverified_header(token.token)
    assert header["alg"] == "RS256"
    assert header["kid"] == key_id(public_key(info))


def test_default_azure_credential_takes_the_same_path(local_stack_no_emulator: StackInfo) -> None:
    credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
    token = credential.get_token(f"{SPEECH}/.default")
    claims = verify(local_stack_no_emulator, token.token, SPEECH)
    assert claims["oid"] == local_stack_no_emulator.env["LOCAL_IDENTITY_OBJECT_ID"]


def test_user_assigned_client_id_must_be_ours(local_stack_no_emulator: StackInfo) -> None:
    info = local_stack_no_emulator
    ours = ManagedIdentityCredential(client_id=info.env["LOCAL_IDENTITY_CLIENT_ID"])
    assert verify(info, ours.get_token(STORAGE).token, STORAGE)
    other = ManagedIdentityCredential(client_id="00000000-0000-0000-0000-000000000001")
    with pytest.raises(ClientAuthenticationError):
        other.get_token(STORAGE)


def test_wrong_identity_header_makes_the_credential_raise(
    local_stack_no_emulator: StackInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-secret")
    with pytest.raises(ClientAuthenticationError) as caught:
        ManagedIdentityCredential().get_token(f"{STORAGE}/.default")
    assert "403" in str(caught.value)
    assert local_stack_no_emulator.identity_header not in str(caught.value)


@pytest.mark.parametrize(
    ("headers", "params", "status"),
    [
        ({}, {"api-version": API_VERSION, "resource": STORAGE}, 401),
        ({"X-IDENTITY-HEADER": "wrong"}, {"api-version": API_VERSION, "resource": STORAGE}, 403),
        (None, {"api-version": "2018-02-01", "resource": STORAGE}, 400),
        (None, {"resource": STORAGE}, 400),
        (None, {"api-version": API_VERSION}, 400),
        (None, {"api-version": API_VERSION, "resource": " "}, 400),
        (None, {"api-version": API_VERSION, "resource": STORAGE, "mi_res_id": "/x"}, 400),
    ],
)
def test_bad_requests_get_app_service_style_errors(
    local_stack_no_emulator: StackInfo,
    headers: dict[str, str] | None,
    params: dict[str, str],
    status: int,
) -> None:
    info = local_stack_no_emulator
    sent = {"X-IDENTITY-HEADER": info.identity_header} if headers is None else headers
    response = httpx.get(info.identity_endpoint, params=params, headers=sent)
    assert response.status_code == status
    body = response.json()
    assert body["statusCode"] == status
    assert body["message"]
    assert "access_token" not in body


def test_success_answer_is_what_app_service_sends(local_stack_no_emulator: StackInfo) -> None:
    info = local_stack_no_emulator
    response = httpx.get(
        info.identity_endpoint,
        params={"api-version": API_VERSION, "resource": f"{STORAGE}/"},
        headers={"X-IDENTITY-HEADER": info.identity_header},
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "expires_on", "resource", "token_type", "client_id"}
    assert body["resource"] == f"{STORAGE}/"
    assert body["token_type"] == "Bearer"
    assert body["client_id"] == info.env["LOCAL_IDENTITY_CLIENT_ID"]
    assert isinstance(body["expires_on"], str)
    assert int(body["expires_on"]) == verify(info, body["access_token"], STORAGE)["exp"]
    assert httpx.post(info.identity_endpoint).status_code == 405
    health = httpx.get(info.identity_endpoint.replace("/msi/token", "/health"))
    assert health.status_code == 200


def test_short_lived_tokens_are_refreshed_after_expiry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = ensure_identity(tmp_path)
    key = serialization.load_pem_public_key(state.public_key_path.read_bytes())
    with serve(create_app(state, lifetime=2)) as url:
        monkeypatch.setenv("IDENTITY_ENDPOINT", f"{url}/msi/token")
        monkeypatch.setenv("IDENTITY_HEADER", state.header_secret)
        credential = ManagedIdentityCredential()
        first = credential.get_token(f"{STORAGE}/.default")
        time.sleep(max(0.0, first.expires_on - time.time()) + 1.0)
        with pytest.raises(jwt.ExpiredSignatureError):
            jwt.decode(first.token, key, algorithms=["RS256"], audience=STORAGE)  # type: ignore[arg-type]
        second = credential.get_token(f"{STORAGE}/.default")
    assert second.token != first.token
    assert second.expires_on > first.expires_on
    claims = jwt.decode(second.token, key, algorithms=["RS256"], audience=STORAGE, leeway=1)  # type: ignore[arg-type]
    assert claims["exp"] == second.expires_on


def test_long_lived_tokens_come_from_the_credential_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # MSAL treats a token within 5 minutes of expiry as expired, so the cache only shows
    # with lifetimes above 300 s; below that every get_token is a fresh request.
    state = ensure_identity(tmp_path)
    with serve(create_app(state, lifetime=3600)) as url:
        monkeypatch.setenv("IDENTITY_ENDPOINT", f"{url}/msi/token")
        monkeypatch.setenv("IDENTITY_HEADER", state.header_secret)
        credential = ManagedIdentityCredential()
        first = credential.get_token(STORAGE)
        second = credential.get_token(STORAGE)
    assert second.token == first.token


def test_claims_follow_entra_v1_managed_identity_tokens(tmp_path: Path) -> None:
    state = ensure_identity(tmp_path)
    issuer = TokenIssuer(state, lifetime=120, clock=lambda: 1_700_000_000.9)
    claims = issuer.claims(f"{STORAGE}/.default")
    uti = claims.pop("uti")
    assert claims == {
        "aud": STORAGE,
        "iss": f"https://sts.windows.net/{state.tenant_id}/",
        "iat": 1_700_000_000,
        "nbf": 1_700_000_000,
        "exp": 1_700_000_120,
        "appid": state.client_id,
        "appidacr": "2",
        "idp": f"https://sts.windows.net/{state.tenant_id}/",
        "idtyp": "app",
        "oid": state.object_id,
        "sub": state.object_id,
        "tid": state.tenant_id,
        "ver": "1.0",
    }
    assert uti != issuer.claims(STORAGE)["uti"]


def test_identity_is_created_once_and_reused(tmp_path: Path) -> None:
    first = ensure_identity(tmp_path)
    key_bytes = first.signing_key_path.read_bytes()
    second = ensure_identity(tmp_path)
    assert second == first
    assert second.signing_key_path.read_bytes() == key_bytes
    assert load_identity(tmp_path) == first
    assert first.settings_path.stat().st_mode & 0o777 == 0o600
    assert first.signing_key_path.stat().st_mode & 0o777 == 0o600
    assert first.header_secret not in repr(first)
    assert TokenIssuer(first).kid == TokenIssuer(second).kid


def test_missing_key_is_reported(tmp_path: Path) -> None:
    state = ensure_identity(tmp_path)
    state.public_key_path.unlink()
    with pytest.raises(FileNotFoundError, match=r"signing-key\.pub\.pem"):
        load_identity(tmp_path)


@pytest.mark.parametrize("lifetime", [0, MAX_TOKEN_LIFETIME + 1])
def test_lifetime_must_be_sane(tmp_path: Path, lifetime: int) -> None:
    with pytest.raises(ValueError, match="lifetime"):
        TokenIssuer(ensure_identity(tmp_path), lifetime=lifetime)


@pytest.mark.parametrize(
    ("resource", "audience"),
    [
        ("https://storage.azure.com", "https://storage.azure.com"),
        ("https://storage.azure.com/", "https://storage.azure.com"),
        ("https://storage.azure.com/.default", "https://storage.azure.com"),
        ("api://my-app/.default", "api://my-app"),
        ("e406a681-f3d4-42a8-90b6-c2b029497af1", "e406a681-f3d4-42a8-90b6-c2b029497af1"),
    ],
)
def test_audience_drops_default_suffix_and_slash(resource: str, audience: str) -> None:
    assert audience_for(resource) == audience


def test_factory_reads_its_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = ensure_identity(tmp_path)
    monkeypatch.setenv("LOCAL_IDENTITY_DIR", str(tmp_path))
    monkeypatch.setenv("LOCAL_IDENTITY_TOKEN_LIFETIME", "120")
    with TestClient(create_app()) as client:
        response = client.get(
            "/msi/token",
            params={"api-version": API_VERSION, "resource": STORAGE},
            headers={"X-IDENTITY-HEADER": state.header_secret},
        )
    body = response.json()
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 120


def test_factory_without_environment_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LOCAL_IDENTITY_DIR", raising=False)
    with pytest.raises(RuntimeError, match="LOCAL_IDENTITY_DIR"):
        create_app()
