"""Options from blob metadata and manifests: spellings, defaults, errors naming the key."""

from __future__ import annotations

import pytest

from shared.pipeline.options import OptionsError, build_request, options_from_metadata
from shared.settings import AppSettings
from shared.speech.models import ProfanityFilterMode, PunctuationMode

SETTINGS = AppSettings(AudioStorage="UseDevelopmentStorage=true")


def test_defaults_apply_when_metadata_sets_nothing() -> None:
    options = options_from_metadata({"owner": "someone"}, SETTINGS)
    assert options.locale == SETTINGS.default_locale
    assert options.diarization is SETTINGS.default_diarization
    assert options.max_speakers is None
    assert options.profanity is SETTINGS.default_profanity
    assert options.time_to_live_hours == SETTINGS.time_to_live_hours


@pytest.mark.parametrize("key", ["maxspeakers", "max_speakers", "maxSpeakers", "MAX_SPEAKERS"])
def test_common_spellings_of_a_key_are_one_option(key: str) -> None:
    options = options_from_metadata({key: "4"}, SETTINGS)
    assert options.max_speakers == 4
    assert options.diarization is True, "asking for speakers turns diarization on"


def test_every_option_parses() -> None:
    options = options_from_metadata(
        {
            "locale": "de-DE",
            "diarization": "yes",
            "maxspeakers": "2",
            "word_timestamps": "0",
            "profanity": "TAGS",
            "punctuation": "automatic",
            "channels": "0,1",
            "model": "https://example.cognitiveservices.azure.com/speechtotext/models/base/x",
            "timetolivehours": "12",
        },
        SETTINGS,
    )
    assert options.locale == "de-DE"
    assert options.diarization is True
    assert options.word_timestamps is False
    assert options.profanity is ProfanityFilterMode.TAGS
    assert options.punctuation is PunctuationMode.AUTOMATIC
    assert options.channels == [0, 1]
    assert options.time_to_live_hours == 12
    body = build_request(
        options, display_name="stt:x a.wav", content_urls=["https://a.example/c/a.wav?sig=x"]
    ).to_body()
    assert body["model"] == {"self": options.model}
    assert body["properties"]["diarization"] == {"enabled": True, "maxSpeakers": 2}
    assert body["properties"]["channels"] == [0, 1]
    assert body["properties"]["timeToLiveHours"] == 12


@pytest.mark.parametrize(
    ("metadata", "key", "text"),
    [
        ({"Max_Speakers": "1"}, "Max_Speakers", "greater than or equal to 2"),
        ({"maxspeakers": "many"}, "maxspeakers", "integer"),
        ({"diarization": "perhaps"}, "diarization", "boolean"),
        ({"profanity": "bleep"}, "profanity", "None, Removed, Tags, Masked"),
        ({"channels": "left"}, "channels", "0, 1 or 0,1"),
        ({"locale": "english"}, "locale", "en-US"),
        ({"model": "ftp://models/x"}, "model", "https"),
        ({"timetolivehours": "2"}, "timetolivehours", "greater than or equal to 6"),
        ({"diarization": "false", "maxSpeakers": "3"}, "maxSpeakers", "needs diarization"),
        ({"maxspeakers": "3", "max_speakers": "4"}, "max_speakers", "same option"),
    ],
)
def test_bad_values_name_the_metadata_key(metadata: dict[str, str], key: str, text: str) -> None:
    with pytest.raises(OptionsError) as caught:
        options_from_metadata(metadata, SETTINGS)
    assert caught.value.key == key
    assert text in str(caught.value)
