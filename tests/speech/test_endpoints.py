"""Surface URLs and token scopes per cloud, from an endpoint or a region."""

from __future__ import annotations

import pytest

from shared.speech.endpoints import Cloud, SpeechEndpoints, custom_subdomain_url, regional_cloud


def test_public_custom_subdomain() -> None:
    ep = SpeechEndpoints.from_endpoint("https://contoso-speech.cognitiveservices.azure.com/")
    assert ep.cloud is Cloud.PUBLIC
    assert ep.batch_base == "https://contoso-speech.cognitiveservices.azure.com/speechtotext"
    assert ep.short_audio_url == (
        "https://contoso-speech.cognitiveservices.azure.com"
        "/stt/speech/recognition/conversation/cognitiveservices/v1"
    )
    assert ep.issue_token_url == (
        "https://contoso-speech.cognitiveservices.azure.com/sts/v1.0/issueToken"
    )
    assert ep.token_scope == "https://cognitiveservices.azure.com/.default"


def test_china_custom_subdomain() -> None:
    ep = SpeechEndpoints.from_endpoint("https://contoso.cognitiveservices.azure.cn")
    assert ep.cloud is Cloud.CHINA
    assert ep.batch_base == "https://contoso.cognitiveservices.azure.cn/speechtotext"
    assert ep.token_scope == "https://cognitiveservices.azure.cn/.default"


def test_public_region() -> None:
    ep = SpeechEndpoints.from_region("westeurope")
    assert ep.batch_base == "https://westeurope.api.cognitive.microsoft.com/speechtotext"
    assert ep.short_audio_url == (
        "https://westeurope.stt.speech.microsoft.com"
        "/speech/recognition/conversation/cognitiveservices/v1"
    )
    assert (
        ep.issue_token_url == "https://westeurope.api.cognitive.microsoft.com/sts/v1.0/issueToken"
    )
    assert ep.token_scope == "https://cognitiveservices.azure.com/.default"


def test_china_region_matches_seed_001() -> None:
    ep = SpeechEndpoints.from_region("chinanorth2", cloud=Cloud.CHINA)
    # Seed 001: https://<REGION>.stt.speech.azure.cn/speech/recognition/... and
    # https://<REGION>.api.cognitive.azure.cn/sts/v1.0/issueToken.
    assert ep.short_audio_url == (
        "https://chinanorth2.stt.speech.azure.cn/speech/recognition/conversation/cognitiveservices/v1"
    )
    assert ep.issue_token_url == "https://chinanorth2.api.cognitive.azure.cn/sts/v1.0/issueToken"
    assert ep.batch_base == "https://chinanorth2.api.cognitive.azure.cn/speechtotext"
    assert ep.token_scope == "https://cognitiveservices.azure.cn/.default"


def test_us_government_region() -> None:
    ep = SpeechEndpoints.from_region("usgovvirginia", cloud=Cloud.US_GOVERNMENT)
    assert ep.short_audio_url.startswith("https://usgovvirginia.stt.speech.azure.us/")
    assert ep.token_scope == "https://cognitiveservices.azure.us/.default"


def test_a_regional_endpoint_is_recognised_as_such() -> None:
    ep = SpeechEndpoints.from_endpoint("https://chinaeast2.api.cognitive.azure.cn")
    assert ep == SpeechEndpoints.from_region("chinaeast2", cloud=Cloud.CHINA)


def test_loopback_emulator_may_use_plain_http() -> None:
    ep = SpeechEndpoints.from_endpoint("http://127.0.0.1:8123")
    assert ep.batch_base == "http://127.0.0.1:8123/speechtotext"
    assert ep.short_audio_url.startswith("http://127.0.0.1:8123/stt/speech/")


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("http://contoso.cognitiveservices.azure.com", "https"),
        ("contoso.cognitiveservices.azure.com", "absolute"),
        ("https://contoso.cognitiveservices.azure.com/speechtotext", "no path"),
        ("https://contoso.cognitiveservices.azure.com/?x=1", "no path"),
    ],
)
def test_bad_endpoints_are_refused(endpoint: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SpeechEndpoints.from_endpoint(endpoint)


@pytest.mark.parametrize("region", ["", "west europe", "westeurope.api", "x" * 41])
def test_bad_regions_are_refused(region: str) -> None:
    with pytest.raises(ValueError, match="region"):
        SpeechEndpoints.from_region(region)


@pytest.mark.parametrize(
    ("endpoint", "cloud"),
    [
        ("https://westeurope.api.cognitive.microsoft.com/", Cloud.PUBLIC),
        ("https://chinanorth2.api.cognitive.azure.cn", Cloud.CHINA),
        ("https://usgovvirginia.api.cognitive.microsoft.us", Cloud.US_GOVERNMENT),
        ("https://contoso.cognitiveservices.azure.com", None),
        ("https://contoso.cognitiveservices.azure.us", None),
        ("http://127.0.0.1:7080", None),
    ],
)
def test_regional_hosts_are_told_from_custom_subdomains(endpoint: str, cloud: Cloud | None) -> None:
    assert regional_cloud(endpoint) is cloud


def test_custom_subdomain_url_per_cloud() -> None:
    assert custom_subdomain_url(Cloud.PUBLIC) == "https://<name>.cognitiveservices.azure.com"
    assert custom_subdomain_url(Cloud.CHINA, "x") == "https://x.cognitiveservices.azure.cn"
    assert custom_subdomain_url(Cloud.US_GOVERNMENT) == "https://<name>.cognitiveservices.azure.us"
