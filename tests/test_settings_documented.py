"""local.settings.json.example lists every setting the code reads, with values that load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.config import load_settings, setting_name
from shared.settings import AppSettings
from shared.speech.config import SpeechSettings

EXAMPLE = Path(__file__).resolve().parents[1] / "local.settings.json.example"


def example_values() -> dict[str, str]:
    values: dict[str, str] = json.loads(EXAMPLE.read_text(encoding="utf-8"))["Values"]
    return values


@pytest.mark.parametrize("model", [AppSettings, SpeechSettings])
def test_every_setting_is_listed(model: type[AppSettings] | type[SpeechSettings]) -> None:
    missing = [
        setting_name(model, field)
        for field in model.model_fields
        if setting_name(model, field) not in example_values()
    ]
    assert not missing, f"add to local.settings.json.example: {missing}"


def test_the_example_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in example_values().items():
        monkeypatch.setenv(name, value)
    settings = load_settings(AppSettings)
    assert settings.uses_identity
    assert settings.default_max_speakers is None, "an empty setting counts as unset"
    assert load_settings(SpeechSettings).endpoint == "http://127.0.0.1:7080"
