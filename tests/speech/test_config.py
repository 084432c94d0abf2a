"""Settings: validated once, errors name the app setting to fix."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from shared.config import SettingsError, load_settings
from shared.speech.auth import EntraAuth, KeyAuth
from shared.speech.config import AuthMode, SpeechClients, SpeechSettings
from shared.speech.endpoints import Cloud
from shared.speech.issued_token import IssuedTokenAuth
from tests.speech.test_auth import SyncCredential

KEY = "00112233445566778899aabbccddeeff"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [
        "SPEECH_ENDPOINT",
        "SPEECH_REGION",
        "SPEECH_CLOUD",
        "SPEECH_AUTH_MODE",
        "SPEECH_KEY",
        "SPEECH_RESOURCE_ID",
        "SPEECH_API_VERSION",
        "SPEECH_TIMEOUT_SECONDS",
        "SPEECH_MAX_ATTEMPTS",
    ]:
        monkeypatch.delenv(name, raising=False)


def test_entra_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECH_ENDPOINT", "https://contoso.cognitiveservices.azure.cn")
    settings = load_settings(SpeechSettings)
    assert settings.auth_mode is AuthMode.ENTRA
    assert settings.api_version == "2024-11-15"
    assert settings.endpoints().cloud is Cloud.CHINA


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({}, ["SPEECH_ENDPOINT", "SPEECH_REGION"]),
        ({"SPEECH_REGION": "westus"}, ["SPEECH_ENDPOINT", "Entra"]),
        ({"SPEECH_REGION": "westus", "SPEECH_AUTH_MODE": "key"}, ["SPEECH_KEY"]),
        (
            {"SPEECH_REGION": "westus", "SPEECH_AUTH_MODE": "issued-token", "SPEECH_KEY": " "},
            ["SPEECH_KEY"],
        ),
        (
            {"SPEECH_ENDPOINT": "https://a.cognitiveservices.azure.com", "SPEECH_REGION": "x"},
            ["only one"],
        ),
        ({"SPEECH_ENDPOINT": "http://contoso.example.com"}, ["https"]),
        ({"SPEECH_REGION": "west us", "SPEECH_AUTH_MODE": "key", "SPEECH_KEY": KEY}, ["region"]),
        (
            {
                "SPEECH_ENDPOINT": "https://a.cognitiveservices.azure.com",
                "SPEECH_API_VERSION": "v3.2",
            },
            ["SPEECH_API_VERSION"],
        ),
        (
            {"SPEECH_ENDPOINT": "https://a.cognitiveservices.azure.com", "SPEECH_AUTH_MODE": "sas"},
            ["SPEECH_AUTH_MODE"],
        ),
        (
            {
                "SPEECH_ENDPOINT": "https://a.cognitiveservices.azure.com",
                "SPEECH_MAX_ATTEMPTS": "0",
            },
            ["SPEECH_MAX_ATTEMPTS"],
        ),
    ],
)
def test_bad_settings_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], names: list[str]
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as info:
        load_settings(SpeechSettings)
    for name in names:
        assert name in str(info.value)
    assert KEY not in str(info.value)


async def test_each_auth_mode_builds_its_auth() -> None:
    entra = SpeechClients(
        SpeechSettings(endpoint="https://contoso.cognitiveservices.azure.com"),
        credential=SyncCredential(),
    )
    key = SpeechClients(SpeechSettings(region="westus", auth_mode=AuthMode.KEY, key=SecretStr(KEY)))
    issued = SpeechClients(
        SpeechSettings(region="westus", auth_mode=AuthMode.ISSUED_TOKEN, key=SecretStr(KEY))
    )
    try:
        assert isinstance(entra.auth, EntraAuth)
        assert isinstance(key.auth, KeyAuth)
        assert isinstance(issued.auth, IssuedTokenAuth)
        assert entra.batch.endpoints.batch_base == (
            "https://contoso.cognitiveservices.azure.com/speechtotext"
        )
        with pytest.raises(ValueError, match="SPEECH_RESOURCE_ID"):
            entra.short_audio()
        assert key.short_audio().endpoints.short_audio_url.startswith(
            "https://westus.stt.speech.microsoft.com/"
        )
        assert KEY not in repr(key.auth)
        assert KEY not in repr(issued.auth)
    finally:
        for clients in (entra, key, issued):
            await clients.aclose()


# A regional endpoint per cloud, as an account without a custom subdomain reports it
# (properties.endpoint), and the custom-subdomain form the message must point to.
REGIONAL_ENDPOINTS = [
    (
        "https://westeurope.api.cognitive.microsoft.com/",
        "https://<name>.cognitiveservices.azure.com",
    ),
    ("https://chinanorth2.api.cognitive.azure.cn", "https://<name>.cognitiveservices.azure.cn"),
    (
        "https://usgovvirginia.api.cognitive.microsoft.us/",
        "https://<name>.cognitiveservices.azure.us",
    ),
]


@pytest.mark.parametrize(("endpoint", "custom"), REGIONAL_ENDPOINTS)
def test_entra_refuses_a_regional_endpoint_and_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, endpoint: str, custom: str
) -> None:
    # Speech takes Entra tokens only on a custom subdomain: on the regional host every
    # call would fail 401, so the setup is refused at start instead.
    monkeypatch.setenv("SPEECH_ENDPOINT", endpoint)
    with pytest.raises(SettingsError) as info:
        load_settings(SpeechSettings)
    message = str(info.value)
    assert message.count("SPEECH_ENDPOINT") >= 2  # the setting at fault, and what to set
    assert endpoint.rstrip("/") in message
    assert custom in message
    assert "az cognitiveservices account update" in message
    assert "--custom-domain <name>" in message
    assert "SPEECH_AUTH_MODE=key" in message


@pytest.mark.parametrize(("endpoint", "custom"), REGIONAL_ENDPOINTS)
def test_key_auth_still_takes_a_regional_endpoint(endpoint: str, custom: str) -> None:
    del custom
    settings = SpeechSettings(endpoint=endpoint, auth_mode=AuthMode.KEY, key=SecretStr(KEY))
    assert settings.endpoints().batch_base == f"{endpoint.rstrip('/')}/speechtotext"


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:7080",  # the offline emulator
        "http://localhost:7080",
        "http://[::1]:7080",
        "https://contoso.cognitiveservices.azure.com/",
        "https://contoso.cognitiveservices.azure.cn",
        "https://contoso.cognitiveservices.azure.us",
    ],
)
def test_entra_takes_custom_subdomains_and_loopback_emulators(endpoint: str) -> None:
    assert SpeechSettings(endpoint=endpoint).auth_mode is AuthMode.ENTRA


def test_a_regional_endpoint_is_refused_whatever_speech_cloud_says() -> None:
    with pytest.raises(ValueError, match="regional endpoint"):
        SpeechSettings(endpoint="https://westeurope.api.cognitive.microsoft.com", cloud=Cloud.CHINA)
