"""The function app's app settings (infra/app/api.bicep) against what the code reads.

The names come from the settings models themselves: a field of ``AppSettings`` or
``SpeechSettings`` added without a Bicep app setting (or an entry in NOT_SET saying why it
stays unset) fails here, and so does an app setting nothing reads any more.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic_settings import BaseSettings

from shared.config import setting_name
from shared.settings import AppSettings
from shared.speech.config import AuthMode, SpeechSettings
from tests.infra.bicep import body, literal, template, the_resource

# Settings the code reads that the deployment leaves unset on purpose.
NOT_SET = {
    "AudioStorage": "a development connection string with an account key (Azurite only)",
    "DEFAULT_MAX_SPEAKERS": "no default: unset leaves the speaker count to Speech; "
    "an empty app setting would not parse as an integer",
    "SPEECH_REGION": "key auth without a custom subdomain; excludes SPEECH_ENDPOINT",
    "SPEECH_CLOUD": "read from SPEECH_ENDPOINT's host; needed only with SPEECH_REGION",
    "SPEECH_KEY": "the deployment is keyless: the account has local auth disabled",
    "WEBSITE_HOSTNAME": "set by the App Service platform itself (the app's primary host name); "
    "SPEECH_WEBHOOK_URL stays empty so the web hook URL is derived from it",
}

# Settings the platform and libraries read, not the settings models.
HOST_SETTINGS = {
    # identity-based host storage (functions-reference: host storage with an identity)
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    # the AudioStorage connection as the blob trigger extension reads it
    "AudioStorage__credential",
    # azure-identity: which user-assigned identity DefaultAzureCredential uses
    "AZURE_CLIENT_ID",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    # the Python worker configures the Azure Monitor distro itself (opentelemetry-howto)
    "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY",
    # the distro: its automatic instrumentations, all off (shared/telemetry/setup.py)
    "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS",
    # HTTP streams
    "PYTHON_ENABLE_INIT_INDEXING",
}

# Settings Flex Consumption rejects or ignores, and key-based host storage.
NOT_ON_FLEX = {
    "AzureWebJobsStorage",
    "FUNCTIONS_EXTENSION_VERSION",
    "FUNCTIONS_WORKER_RUNTIME",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_RUN_FROM_PACKAGE",
    "APPINSIGHTS_INSTRUMENTATIONKEY",
}

# Stand-ins for values only a deployment knows (resource endpoints and ids), to validate the rest.
DEPLOYMENT_VALUES = {
    "AudioStorage__blobServiceUri": "https://stexample.blob.core.windows.net/",
    "AudioStorage__queueServiceUri": "https://stexample.queue.core.windows.net/",
    "AudioStorage__tableServiceUri": "https://stexample.table.core.windows.net/",
    "AudioStorage__clientId": "00000000-0000-0000-0000-000000000000",
    "SPEECH_ENDPOINT": "https://spch-example.cognitiveservices.azure.com/",
    "SPEECH_RESOURCE_ID": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"
    "rg-example/providers/Microsoft.CognitiveServices/accounts/spch-example",
}

MODELS: tuple[type[BaseSettings], ...] = (AppSettings, SpeechSettings)


def read_by_code() -> dict[str, tuple[type[BaseSettings], str]]:
    """Every setting the settings models read: name -> (model, field)."""
    return {
        setting_name(model, field): (model, field)
        for model in MODELS
        for field in model.model_fields
    }


def app_settings() -> list[dict[str, Any]]:
    site = the_resource(template("app/api.bicep"), "Microsoft.Web/sites")
    settings: list[dict[str, Any]] = site["properties"]["siteConfig"]["appSettings"]
    return settings


def resolve(value: Any) -> Any:
    """An api.bicep value where the templates fix it, else ``None``: a literal; an api.bicep
    parameter that main.bicep feeds from one of its own parameter defaults or variables; or a
    ``condition ? a : b`` whose condition resolves so (SPEECH_WEBHOOKS, SPEECH_WEBHOOK_SECRET)."""
    api = template("app/api.bicep")
    fixed = literal(api, value)
    if fixed is None and isinstance(value, str) and value in api["parameters"]:
        fixed = _resolve_in_main(body(template("main.bicep")["modules"]["api"])["params"][value])
    operator = value.get("operator") if isinstance(value, dict) else None
    if fixed is None and isinstance(operator, dict) and operator["type"] == "conditional":
        condition = resolve(operator["operands"]["condition"])
        if isinstance(condition, bool):
            fixed = resolve(operator["operands"]["true_value" if condition else "false_value"])
    return fixed


def _resolve_in_main(argument: Any) -> Any:
    """What main.bicep passes to api.bicep, where its defaults fix it: a parameter default, a
    variable, or ``condition ? a : b`` on a parameter (EVENT_GRID_TOPIC_ENDPOINT)."""
    main = template("main.bicep")
    if isinstance(argument, str) and argument in main["parameters"]:
        return literal(main, main["parameters"][argument]["default"])
    if isinstance(argument, str) and argument in main.get("variables", {}):
        return literal(main, main["variables"][argument]["value"])
    operator = argument.get("operator") if isinstance(argument, dict) else None
    if isinstance(operator, dict) and operator["type"] == "conditional":
        condition = _resolve_in_main(operator["operands"]["condition"])
        if isinstance(condition, bool):
            return _resolve_in_main(
                operator["operands"]["true_value" if condition else "false_value"]
            )
    return literal(main, argument)


def resolved_values() -> dict[str, Any]:
    """Each app setting's value where the templates fix it (see :func:`resolve`), with the
    main.bicep defaults. Values only a deployment knows are left out."""
    values: dict[str, Any] = {}
    for setting in app_settings():
        fixed = resolve(setting["value"])
        if fixed is not None:
            values[setting["name"]] = fixed
    return values


def test_names_are_unique() -> None:
    names = [setting["name"] for setting in app_settings()]
    assert len(names) == len(set(names))


def test_every_setting_the_code_reads_is_set() -> None:
    names = {setting["name"] for setting in app_settings()}
    missing = sorted(set(read_by_code()) - set(NOT_SET) - names)
    assert not missing, f"set these in infra/app/api.bicep (or say why not in NOT_SET): {missing}"


def test_not_set_lists_real_settings_that_really_stay_unset() -> None:
    names = {setting["name"] for setting in app_settings()}
    assert set(NOT_SET) <= set(read_by_code())
    assert not set(NOT_SET) & names


def test_every_app_setting_is_read_by_something() -> None:
    names = {setting["name"] for setting in app_settings()}
    unknown = sorted(names - set(read_by_code()) - HOST_SETTINGS)
    assert not unknown, f"nothing reads these any more: {unknown}"
    assert names >= HOST_SETTINGS
    assert not names & NOT_ON_FLEX


def test_connections_are_identity_based() -> None:
    values = resolved_values()
    assert values["AzureWebJobsStorage__credential"] == "managedidentity"
    assert values["AudioStorage__credential"] == "managedidentity"
    assert values["SPEECH_AUTH_MODE"] == AuthMode.ENTRA.value
    assert values["PYTHON_ENABLE_INIT_INDEXING"] == "1"
    by_name = {setting["name"]: setting["value"] for setting in app_settings()}
    for name in ("AzureWebJobsStorage__clientId", "AudioStorage__clientId", "AZURE_CLIENT_ID"):
        assert by_name[name] == "identityClientId"
    assert by_name["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == (
        "ClientId=${identityClientId};Authorization=AAD"
    )


def test_values_are_valid_and_equal_the_code_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    code = read_by_code()
    values = resolved_values()
    deployment_only = sorted(name for name in code if name not in values and name not in NOT_SET)
    assert deployment_only == sorted(DEPLOYMENT_VALUES)

    for name in code:
        monkeypatch.delenv(name, raising=False)
    for name, value in {**values, **DEPLOYMENT_VALUES}.items():
        if name in code:
            monkeypatch.setenv(name, str(value))
    loaded = {model: model() for model in MODELS}

    for name, (model, field) in code.items():
        default = model.model_fields[field].default
        if name in values and default is not None:
            assert getattr(loaded[model], field) == default, name
    speech = loaded[SpeechSettings]
    assert isinstance(speech, SpeechSettings)
    assert speech.auth_mode is AuthMode.ENTRA
    assert speech.endpoints().batch_base.startswith(DEPLOYMENT_VALUES["SPEECH_ENDPOINT"][:-1])


def test_web_hook_settings_load_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    # Off (main.bicep's default): no secret, no URL; on: the Key Vault reference resolved by
    # the platform (a stand-in here) and the URL derived from the platform's WEBSITE_HOSTNAME.
    by_name = {setting["name"]: setting["value"] for setting in app_settings()}
    switch = by_name["SPEECH_WEBHOOKS"]["operator"]["operands"]
    assert (switch["condition"], switch["true_value"], switch["false_value"]) == (
        "speechWebhooks",
        "on",
        "off",
    )
    code = read_by_code()
    for name in code:
        monkeypatch.delenv(name, raising=False)
    for name, value in {**resolved_values(), **DEPLOYMENT_VALUES}.items():
        if name in code:
            monkeypatch.setenv(name, str(value))
    off = AppSettings()
    assert off.speech_webhooks is False
    assert off.speech_webhook_secret is None
    assert off.webhook_url is None

    monkeypatch.setenv("SPEECH_WEBHOOKS", switch["true_value"])
    monkeypatch.setenv("SPEECH_WEBHOOK_SECRET", "resolved-from-key-vault-0123456789")
    monkeypatch.setenv("WEBSITE_HOSTNAME", "func-example.azurewebsites.net")
    on = AppSettings()
    assert on.speech_webhooks is True
    assert on.webhook_url == "https://func-example.azurewebsites.net/api/speech/webhooks"
