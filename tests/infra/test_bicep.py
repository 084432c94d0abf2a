"""infra/: every template parses, declares what the design needs, and holds no secret."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

from shared.settings import AppSettings, Routing
from tests.infra.bicep import (
    BICEP_FILES,
    GUID,
    INFRA,
    accessor,
    body,
    call_args,
    code_lines,
    decorator_argument,
    decorator_types,
    resources,
    template,
    the_resource,
)

# Built-in role definitions the templates assign, by GUID, as Azure publishes them.
# Sources: "Azure built-in roles" for Storage and Monitor
# (learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage and .../monitor;
# MicrosoftDocs/azure-docs articles/role-based-access-control/built-in-roles/storage.md and
# monitor.md) and, for the Speech role, the built-in role table of Microsoft's Azure Verified
# Module for Cognitive Services (Azure/bicep-registry-modules,
# avm/res/cognitive-services/account/main.bicep); for Key Vault, "Azure built-in roles for
# Security" (learn.microsoft.com/azure/role-based-access-control/built-in-roles/security); for
# Event Grid, "Azure built-in roles for Integration" (.../built-in-roles/integration).
ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",  # built-in-roles/storage
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",  # .../storage
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",  # .../storage
    "db58b8e5-c6ad-4a2a-8342-4190687cbf4a": "Storage Blob Delegator",  # .../storage
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",  # .../monitor
    "f2dc8367-1007-4938-bd23-fe263f013447": "Cognitive Services Speech User",  # AVM account
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",  # .../security
    "d5a91429-5739-47e2-a06b-3470a27159e7": "EventGrid Data Sender",  # .../integration
}

# Roles only the app's identity holds: the deploying user needs none of them to debug locally.
APP_ONLY_ROLES = {"Key Vault Secrets User", "EventGrid Data Sender"}

# What each principal must hold, and nothing more: the app's identity and the deploying user.
EXPECTED_GRANTS = {
    (principal, role)
    for principal in ("appPrincipalId", "userPrincipalId")
    for role in ROLES.values()
    if principal == "appPrincipalId" or role not in APP_ONLY_ROLES
}

# Resource types and the API versions used, each a published version of its provider.
API_VERSIONS = {
    "Microsoft.Resources/resourceGroups": "2024-03-01",
    "Microsoft.ManagedIdentity/userAssignedIdentities": "2023-01-31",
    "Microsoft.Storage/storageAccounts": "2024-01-01",
    "Microsoft.Storage/storageAccounts/blobServices": "2024-01-01",
    "Microsoft.Storage/storageAccounts/blobServices/containers": "2024-01-01",
    "Microsoft.Storage/storageAccounts/tableServices": "2024-01-01",
    "Microsoft.Storage/storageAccounts/tableServices/tables": "2024-01-01",
    "Microsoft.Storage/storageAccounts/queueServices": "2024-01-01",
    "Microsoft.Storage/storageAccounts/queueServices/queues": "2024-01-01",
    "Microsoft.Storage/storageAccounts/managementPolicies": "2024-01-01",
    "Microsoft.Web/serverfarms": "2024-11-01",
    "Microsoft.Web/sites": "2024-11-01",
    "Microsoft.Web/sites/basicPublishingCredentialsPolicies": "2024-11-01",
    "Microsoft.CognitiveServices/accounts": "2024-10-01",
    "Microsoft.OperationalInsights/workspaces": "2023-09-01",
    "Microsoft.Insights/components": "2020-02-02",
    "Microsoft.EventGrid/systemTopics": "2025-02-15",
    "Microsoft.EventGrid/systemTopics/eventSubscriptions": "2025-02-15",
    "Microsoft.EventGrid/topics": "2025-02-15",
    "Microsoft.Authorization/roleAssignments": "2022-04-01",
    "Microsoft.KeyVault/vaults": "2024-11-01",
    "Microsoft.KeyVault/vaults/secrets": "2024-11-01",
    "Microsoft.Insights/diagnosticSettings": "2021-05-01-preview",
}

# Key material in any form: list*Keys calls, account keys, key-bearing connection strings.
FORBIDDEN = re.compile(
    r"listKeys?\s*\(|listConnectionStrings|listAccountSas|listServiceSas|AccountKey|"
    r"SharedAccessKey|primaryKey|secondaryKey|primaryMasterKey|\bkey[12]\b",
    re.IGNORECASE,
)
# The one connection string allowed: Application Insights' ingestion endpoint and instrumentation
# key, an identifier rather than a secret once local auth is off (monitoring.bicep).
ALLOWED_CONNECTION_STRING = "applicationInsights.properties.ConnectionString"


def relative(path: Path) -> str:
    return str(path.relative_to(INFRA))


@pytest.mark.parametrize("path", BICEP_FILES, ids=relative)
def test_every_template_parses(path: Path) -> None:
    parsed = BicepParser().parse(file_path=path)
    assert parsed.get("resources") or parsed.get("modules")


def test_the_expected_templates_exist() -> None:
    assert {relative(p) for p in BICEP_FILES} == {
        "main.bicep",
        "app/api.bicep",
        "app/eventgrid-subscriptions.bicep",
        "app/eventgrid.bicep",
        "app/eventgrid-topic.bicep",
        "app/identity.bicep",
        "app/keyvault.bicep",
        "app/monitoring.bicep",
        "app/rbac.bicep",
        "app/speech-access.bicep",
        "app/speech.bicep",
        "app/storage.bicep",
    }


@pytest.mark.parametrize("path", BICEP_FILES, ids=relative)
def test_every_parameter_is_described(path: Path) -> None:
    parameters = template(relative(path)).get("parameters", {})
    undescribed = [
        name for name, p in parameters.items() if "description" not in decorator_types(p)
    ]
    assert not undescribed


@pytest.mark.parametrize("path", BICEP_FILES, ids=relative)
def test_api_versions_are_the_published_ones(path: Path) -> None:
    for name, res in template(relative(path)).get("resources", {}).items():
        assert API_VERSIONS.get(res["type"]) == res["api_version"], (name, res["type"])


def test_main_is_subscription_scoped_with_the_outputs_azd_reads() -> None:
    main = template("main.bicep")
    assert main["globals"]["scope"]["value"] == "subscription"
    assert {
        "AZURE_LOCATION",
        "AZURE_TENANT_ID",
        "AZURE_RESOURCE_GROUP",
        "AZURE_FUNCTION_NAME",
        "SERVICE_API_NAME",
        "SERVICE_API_URI",
    } <= set(main["outputs"])
    assert {"environmentName", "location", "principalId", "speechSku", "defaultLocale"} <= set(
        main["parameters"]
    )
    assert {"pollSchedule", "existingSpeechAccountName", "existingSpeechResourceGroupName"} <= set(
        main["parameters"]
    )


def test_storage_is_keyless_private_and_tls12() -> None:
    storage = template("app/storage.bicep")
    account = the_resource(storage, "Microsoft.Storage/storageAccounts")["properties"]
    assert account["allowSharedKeyAccess"] is False
    assert account["minimumTlsVersion"] == "TLS1_2"
    assert account["allowBlobPublicAccess"] is False
    assert account["supportsHttpsTrafficOnly"] is True
    assert account["defaultToOAuthAuthentication"] is True


def test_storage_has_the_containers_the_table_and_the_audio_lifecycle_rule() -> None:
    storage = template("app/storage.bicep")
    containers = resources(storage, "Microsoft.Storage/storageAccounts/blobServices/containers")
    assert {body(c)["name"] for c in containers.values()} == {
        "inputContainerName",
        "requestsContainerName",
        "outputContainerName",
        "deploymentContainerName",
    }
    assert all(body(c)["properties"]["publicAccess"] == "None" for c in containers.values())
    table = the_resource(storage, "Microsoft.Storage/storageAccounts/tableServices/tables")
    assert table["name"] == "ledgerTableName"
    queue = the_resource(storage, "Microsoft.Storage/storageAccounts/queueServices/queues")
    assert queue["name"] == "eventsQueueName"

    (policy,) = resources(storage, "Microsoft.Storage/storageAccounts/managementPolicies").values()
    assert policy["config"]["condition"]["operator"]["type"] == "greater_than"
    (rule,) = body(policy)["properties"]["policy"]["rules"]
    assert rule["definition"]["filters"]["prefixMatch"] == ["${inputContainerName}/"]
    delete = rule["definition"]["actions"]["baseBlob"]["delete"]
    assert delete == {"daysAfterModificationGreaterThan": "audioRetentionDays"}


def test_main_wires_the_same_names_into_storage_and_the_app() -> None:
    modules = template("main.bicep")["modules"]
    storage, api = body(modules["storage"])["params"], body(modules["api"])["params"]
    for name in (
        "inputContainerName",
        "requestsContainerName",
        "outputContainerName",
        "deploymentContainerName",
        "ledgerTableName",
        "eventsQueueName",
    ):
        assert storage[name] == api[name] == name
    main = template("main.bicep")
    queue = main["variables"]["eventsQueueName"]["value"]
    assert queue == AppSettings.model_fields["events_queue"].default


def test_function_app_is_flex_consumption_python_311_with_identity_deployment() -> None:
    api = template("app/api.bicep")
    plan = the_resource(api, "Microsoft.Web/serverfarms")
    assert plan["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    assert plan["properties"]["reserved"] is True

    site = the_resource(api, "Microsoft.Web/sites")
    assert site["kind"] == "functionapp,linux"
    assert site["identity"]["type"] == "UserAssigned"
    assert site["properties"]["httpsOnly"] is True
    config = site["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["value"].endswith("${deploymentContainerName}")
    assert storage["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": "identityId",
    }
    assert set(config["scaleAndConcurrency"]) == {"maximumInstanceCount", "instanceMemoryMB"}

    policies = resources(api, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert {body(p)["name"]: body(p)["properties"]["allow"] for p in policies.values()} == {
        "ftp": False,
        "scm": False,
    }


def test_azd_finds_the_function_app_by_its_service_tag() -> None:
    site = the_resource(template("app/api.bicep"), "Microsoft.Web/sites")
    tags = call_args(site["tags"], "union")
    assert tags is not None
    assert {"'azd-service-name'": "api"} in tags.values()  # pycep keeps a key's quotes


def test_speech_is_entra_only_on_its_custom_subdomain() -> None:
    speech = the_resource(template("app/speech.bicep"), "Microsoft.CognitiveServices/accounts")
    assert speech["kind"] == "SpeechServices"
    assert speech["sku"] == {"name": "sku"}
    assert speech["properties"]["customSubDomainName"] == "name"
    assert speech["properties"]["disableLocalAuth"] is True


def test_an_existing_speech_account_replaces_the_new_one() -> None:
    modules = template("main.bicep")["modules"]
    assert modules["speech"]["config"]["condition"]["operator"]["type"] == "not"
    access = body(modules["speechAccess"])
    scope = call_args(access["scope"], "resource_group")
    assert scope is not None
    assert scope["resource_group_name"] == "speechResourceGroupName"
    api = body(modules["api"])["params"]
    assert accessor(api["speechEndpoint"]) == ["speechAccess", "outputs", "endpoint"]
    assert accessor(api["speechResourceId"]) == ["speechAccess", "outputs", "id"]


def test_application_insights_takes_only_entra_telemetry() -> None:
    monitoring = template("app/monitoring.bicep")
    insights = the_resource(monitoring, "Microsoft.Insights/components")["properties"]
    assert insights["DisableLocalAuth"] is True
    assert accessor(insights["WorkspaceResourceId"]) == ["logAnalytics", "id"]
    workspace = the_resource(monitoring, "Microsoft.OperationalInsights/workspaces")
    assert workspace["properties"]["features"]["disableLocalAuth"] is True


def test_system_topic_carries_the_storage_accounts_events() -> None:
    topic = the_resource(template("app/eventgrid.bicep"), "Microsoft.EventGrid/systemTopics")
    assert topic["properties"]["topicType"] == "Microsoft.Storage.StorageAccounts"
    assert accessor(topic["properties"]["source"]) == ["storage", "id"]


@pytest.mark.parametrize(
    ("symbol", "function", "container"),
    [
        ("audioIntake", "audio_intake", "inputContainerName"),
        ("bulkIntake", "bulk_intake", "requestsContainerName"),
    ],
)
def test_blob_created_reaches_each_intake_functions_webhook(
    symbol: str, function: str, container: str
) -> None:
    subscriptions = template("app/eventgrid-subscriptions.bicep")
    subscription = body(subscriptions["resources"][symbol])
    assert subscriptions["resources"][symbol]["type"] == (
        "Microsoft.EventGrid/systemTopics/eventSubscriptions"
    )
    properties = subscription["properties"]
    assert properties["filter"]["includedEventTypes"] == ["Microsoft.Storage.BlobCreated"]
    assert properties["filter"]["subjectBeginsWith"] == (
        f"/blobServices/default/containers/${{{container}}}/"
    )
    destination = properties["destination"]
    assert destination["endpointType"] == "WebHook"
    url = destination["properties"]["endpointUrl"]
    assert url.startswith("${webhook}?")
    assert f"functionName=Host.Functions.{function}&code=${{blobExtensionKey}}" in url
    assert subscriptions["variables"]["webhook"]["value"].endswith("/runtime/webhooks/blobs")


def test_the_extension_key_is_a_secure_parameter_never_output() -> None:
    subscriptions = template("app/eventgrid-subscriptions.bicep")
    key = subscriptions["parameters"]["blobExtensionKey"]
    assert "secure" in decorator_types(key)
    assert key["default"] is None
    assert not subscriptions.get("outputs")


@pytest.mark.parametrize("path", BICEP_FILES, ids=relative)
def test_no_key_or_key_bearing_connection_string(path: Path) -> None:
    text = path.read_text()
    assert not FORBIDDEN.findall(text)
    for line in re.findall(r".*connectionstring.*", text, re.IGNORECASE):
        code = line.split("//")[0]
        if re.search("connectionstring", code, re.IGNORECASE):
            assert code.strip() == f"value: {ALLOWED_CONNECTION_STRING}", line


def test_the_allowed_connection_string_is_application_insights_without_local_auth() -> None:
    api = template("app/api.bicep")
    assert resources(api, "Microsoft.Insights/components", existing=True)
    insights = the_resource(template("app/monitoring.bicep"), "Microsoft.Insights/components")
    assert insights["properties"]["DisableLocalAuth"] is True


@pytest.mark.parametrize("path", BICEP_FILES, ids=relative)
def test_every_role_guid_is_a_known_role_named_in_a_comment(path: Path) -> None:
    for number, line in code_lines(path):
        for guid in GUID.findall(line):
            name = ROLES.get(guid.lower())
            assert name, f"{relative(path)}:{number}: {guid} is not a known built-in role"
            assert line.rstrip().endswith(f"// {name}"), f"{relative(path)}:{number}: name it"


def role_ids(tpl: dict[str, Any], name: str, loop: dict[str, Any] | None) -> list[str]:
    """The role GUIDs an identifier stands for: a variable, or a loop over a variable list."""
    if loop is not None and name == loop["detail"]["item_name"]:
        array = loop["detail"]["array_name"]
        if isinstance(array, dict):  # (empty(principal) ? [] : roles)
            array = array["operator"]["operands"]["false_value"]
        names = tpl["variables"][array]["value"]
        return [guid for each in names for guid in role_ids(tpl, each, None)]
    value = tpl["variables"][name]["value"]
    assert GUID.fullmatch(value), name
    return [value]


def grants() -> set[tuple[str, str]]:
    """(principal parameter, role name) of every role assignment in infra/."""
    found: set[tuple[str, str]] = set()
    for path in BICEP_FILES:
        tpl = template(relative(path))
        for symbol, res in resources(tpl, "Microsoft.Authorization/roleAssignments").items():
            assignment = body(res)
            properties = assignment["properties"]
            definition = call_args(properties["roleDefinitionId"], "subscription_resource_id")
            assert definition is not None, symbol
            assert definition["resource_type"] == "Microsoft.Authorization/roleDefinitions"
            role = definition["resource_name_1"]

            # name: guid(<scope>.id, <principal>, <role>), so a redeploy finds the same one
            name = call_args(assignment["name"], "guid")
            assert name is not None, symbol
            assert accessor(name["base_string"]) == [assignment["scope"], "id"], symbol
            assert name["extra_string_1"] == properties["principalId"], symbol
            assert name["extra_string_2"] == role, symbol

            expected_type = (
                "ServicePrincipal" if properties["principalId"] == "appPrincipalId" else None
            )
            if expected_type:
                assert properties["principalType"] == expected_type, symbol
            loop = res["config"].get("loop_type")
            for guid in role_ids(tpl, role, loop):
                found.add((properties["principalId"], ROLES[guid]))
    return found


def test_role_assignments_grant_exactly_the_designed_roles() -> None:
    assert grants() == EXPECTED_GRANTS


def test_the_deploying_user_gets_roles_only_when_named() -> None:
    rbac = template("app/rbac.bicep")
    user_storage = rbac["resources"]["userStorageRoles"]["config"]["loop_type"]["detail"]
    condition = user_storage["array_name"]["operator"]["operands"]["condition"]
    assert call_args(condition, "empty") == {"item_to_test": "userPrincipalId"}
    for path, symbol in (
        ("app/rbac.bicep", "userMetricsPublisher"),
        ("app/speech-access.bicep", "userSpeechUser"),
    ):
        condition = template(path)["resources"][symbol]["config"]["condition"]
        assert condition["operator"]["type"] == "not"


# -- Flex Consumption (issue #8, item 8) ---------------------------------------------------


def test_the_site_sets_no_property_flex_consumption_deprecates() -> None:
    # ftpsState is on the Flex Consumption deprecations list (functions-app-settings,
    # "Flex Consumption plan deprecations"); FTP is closed by the publishing-credentials
    # policies instead (test_function_app_is_flex_consumption_...).
    site = the_resource(template("app/api.bicep"), "Microsoft.Web/sites")
    assert "ftpsState" not in site["properties"]["siteConfig"]
    for path in BICEP_FILES:
        code = [line.split("//")[0] for _, line in code_lines(path)]
        assert not [line for line in code if "ftpsState" in line], relative(path)


@pytest.mark.parametrize("path", ["main.bicep", "app/api.bicep"])
def test_maximum_instance_count_has_the_flex_consumption_bounds(path: str) -> None:
    # Flex Consumption scales an app to 40..1000 instances; the official Flex samples
    # declare the parameter @minValue(40) @maxValue(1000).
    parameter = template(path)["parameters"]["maximumInstanceCount"]
    assert decorator_argument(parameter, "min_value") == 40
    assert decorator_argument(parameter, "max_value") == 1000
    default = parameter["default"]
    assert default is None or 40 <= default <= 1000


# -- Speech location (issue #8, item 6) ----------------------------------------------------


def test_the_speech_account_has_its_own_location_defaulting_to_the_apps() -> None:
    main = template("main.bicep")
    parameter = main["parameters"]["speechLocation"]
    assert parameter["type"] == "string"
    assert parameter["default"] == "location"  # a reference to the location parameter
    description = decorator_argument(parameter, "description")
    assert "fast transcription" in description.lower()
    assert "learn.microsoft.com/azure/ai-services/speech-service/regions" in description
    speech = body(main["modules"]["speech"])["params"]
    assert speech["location"] == "speechLocation"
    # azd binds it to an environment variable; unset, azd leaves the Bicep default.
    bound = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert bound["speechLocation"] == {"value": "${SPEECH_LOCATION}"}


# -- Entra needs a custom subdomain (issue #8, item 7) -------------------------------------


def test_an_account_without_a_custom_subdomain_fails_the_deployment_early() -> None:
    main = template("main.bicep")
    # The account the app will call, new or existing, read back where it lives.
    (symbol,) = resources(main, "Microsoft.CognitiveServices/accounts", existing=True)
    account = body(main["resources"][symbol])
    assert account["name"] == "speechAccountName"
    scope = call_args(account["scope"], "resource_group")
    assert scope is not None
    assert scope["resource_group_name"] == "speechResourceGroupName"

    # speech-access.bicep (before the roles and the app) takes only 'ok' for its check...
    access = template("app/speech-access.bicep")["parameters"]["customSubDomainCheck"]
    assert decorator_argument(access, "allowed") == ["ok"]
    assert "custom subdomain" in decorator_argument(access, "description")
    # ...and main.bicep passes 'ok' only when the account has a customSubDomainName.
    check = body(main["modules"]["speechAccess"])["params"]["customSubDomainCheck"]
    check = main["variables"][check]["value"] if isinstance(check, str) else check
    conditional = check["operator"]
    assert conditional["type"] == "conditional"
    tested = call_args(conditional["operands"]["condition"], "empty")
    assert tested is not None
    assert accessor(tested["item_to_test"]) == [symbol, "properties", "customSubDomainName"]
    assert conditional["operands"]["false_value"] == "ok"
    reason = conditional["operands"]["true_value"]
    assert "custom subdomain" in reason
    assert "az cognitiveservices account update" in reason
    assert "--custom-domain" in reason


# -- routing and Speech web hooks ------------------------------------------------------------


def test_routing_is_a_main_parameter_with_the_codes_choices_and_default() -> None:
    main, api = template("main.bicep"), template("app/api.bicep")
    parameter = main["parameters"]["routing"]
    assert decorator_argument(parameter, "allowed") == [mode.value for mode in Routing]
    assert (
        parameter["default"] == Routing.BATCH.value == AppSettings.model_fields["routing"].default
    )
    assert decorator_argument(api["parameters"]["routing"], "allowed") == [m.value for m in Routing]
    assert body(main["modules"]["api"])["params"]["routing"] == "routing"


def test_web_hooks_are_off_by_default_and_switch_the_vault_and_the_app_together() -> None:
    main = template("main.bicep")
    parameter = main["parameters"]["speechWebhooks"]
    assert parameter["type"] == "bool"
    assert parameter["default"] is False
    assert parameter["default"] == AppSettings.model_fields["speech_webhooks"].default
    # The vault (with its secret, role and audit log) exists only with web hooks on...
    vault = main["modules"]["keyVault"]
    assert vault["detail"]["path"] == "app/keyvault.bicep"
    assert vault["config"]["condition"] == "speechWebhooks"
    # ...and its outputs are read under the same condition only.
    api = body(main["modules"]["api"])["params"]
    assert api["speechWebhooks"] == "speechWebhooks"
    uri = api["speechWebhookSecretUri"]["operator"]
    assert uri["type"] == "conditional"
    assert uri["operands"]["condition"] == "speechWebhooks"
    assert accessor(uri["operands"]["true_value"]) == [
        "keyVault",
        "outputs",
        "speechWebhookSecretUri",
    ]
    assert uri["operands"]["false_value"] == ""
    name = main["outputs"]["AZURE_KEY_VAULT_NAME"]["value"]["operator"]
    assert name["operands"]["condition"] == "speechWebhooks"
    assert accessor(name["operands"]["true_value"]) == ["keyVault", "outputs", "name"]
    assert name["operands"]["false_value"] == ""


def test_the_vault_uses_rbac_soft_delete_and_purge_protection() -> None:
    vault = the_resource(template("app/keyvault.bicep"), "Microsoft.KeyVault/vaults")
    properties = vault["properties"]
    assert properties["enableRbacAuthorization"] is True
    assert properties["accessPolicies"] == []
    assert properties["enableSoftDelete"] is True
    assert properties["enablePurgeProtection"] is True
    assert 7 <= properties["softDeleteRetentionInDays"] <= 90
    for deployment_access in (
        "enabledForDeployment",
        "enabledForDiskEncryption",
        "enabledForTemplateDeployment",
    ):
        assert properties[deployment_access] is False, deployment_access


def test_the_apps_identity_is_key_vault_secrets_user_on_the_vault() -> None:
    keyvault = template("app/keyvault.bicep")
    (assignment,) = resources(keyvault, "Microsoft.Authorization/roleAssignments").values()
    assignment = body(assignment)
    assert assignment["scope"] == "vault"
    assert assignment["properties"]["principalId"] == "appPrincipalId"
    role = call_args(assignment["properties"]["roleDefinitionId"], "subscription_resource_id")
    assert role is not None
    assert (
        ROLES[keyvault["variables"][role["resource_name_1"]]["value"]] == "Key Vault Secrets User"
    )
    # the app's identity, the one the site resolves references with
    params = body(template("main.bicep")["modules"]["keyVault"])["params"]
    assert accessor(params["appPrincipalId"]) == ["identity", "outputs", "principalId"]


def test_key_vault_references_resolve_as_the_user_assigned_identity() -> None:
    site = the_resource(template("app/api.bicep"), "Microsoft.Web/sites")
    assert site["properties"]["keyVaultReferenceIdentity"] == "identityId"
    # the site's only identity (pycep keeps a key's quotes)
    assert set(site["identity"]["userAssignedIdentities"]) == {"'${identityId}'"}
    api = body(template("main.bicep")["modules"]["api"])["params"]
    assert accessor(api["identityId"]) == ["identity", "outputs", "id"]


def test_the_secret_setting_is_a_key_vault_reference_only_with_web_hooks() -> None:
    site = the_resource(template("app/api.bicep"), "Microsoft.Web/sites")
    by_name = {s["name"]: s["value"] for s in site["properties"]["siteConfig"]["appSettings"]}
    secret = by_name["SPEECH_WEBHOOK_SECRET"]["operator"]
    assert secret["type"] == "conditional"
    assert secret["operands"] == {
        "condition": "speechWebhooks",
        "true_value": "@Microsoft.KeyVault(SecretUri=${speechWebhookSecretUri})",
        "false_value": "",
    }
    # the URL is derived from WEBSITE_HOSTNAME by the app
    assert by_name["SPEECH_WEBHOOK_URL"] == ""
    # the reference is the secret's versionless URI, so a new version is picked up
    keyvault = template("app/keyvault.bicep")
    secret_resource = the_resource(keyvault, "Microsoft.KeyVault/vaults/secrets")
    assert secret_resource["parent"] == "vault"
    assert secret_resource["name"] == "secretName"
    assert keyvault["variables"]["secretName"]["value"] == "speech-webhook-secret"
    assert secret_resource["properties"]["value"] == "speechWebhookSecret"
    uri = keyvault["outputs"]["speechWebhookSecretUri"]["value"]
    assert uri == "${vault.properties.vaultUri}secrets/${secretName}/"


def test_the_webhook_secret_is_secure_generated_by_azd_and_never_output() -> None:
    main, keyvault = template("main.bicep"), template("app/keyvault.bicep")
    secret = main["parameters"]["speechWebhookSecret"]
    assert "secure" in decorator_types(secret)
    assert secret["default"] is None
    # azd generates it once and keeps it in the environment's config (azd metadata, generate)
    azd = decorator_argument(secret, "metadata")["azd"]
    assert azd["type"] == "generate"
    assert azd["config"]["length"] >= decorator_argument(secret, "min_length") >= 16
    assert "secure" in decorator_types(keyvault["parameters"]["speechWebhookSecret"])
    assert body(main["modules"]["keyVault"])["params"]["speechWebhookSecret"] == (
        "speechWebhookSecret"
    )
    for path in ("main.bicep", "app/keyvault.bicep", "app/api.bicep"):
        outputs = json.dumps(template(path).get("outputs", {}))
        assert 'speechWebhookSecret"' not in outputs, path
        assert "webhookSecret.properties" not in outputs, path


def test_the_vault_audit_log_goes_to_the_workspace() -> None:
    keyvault = template("app/keyvault.bicep")
    setting = the_resource(keyvault, "Microsoft.Insights/diagnosticSettings")
    assert setting["scope"] == "vault"
    assert setting["properties"]["workspaceId"] == "logAnalyticsWorkspaceId"
    assert {"categoryGroup": "audit", "enabled": True} in setting["properties"]["logs"]
    params = body(template("main.bicep")["modules"]["keyVault"])["params"]
    assert accessor(params["logAnalyticsWorkspaceId"]) == [
        "monitoring",
        "outputs",
        "logAnalyticsId",
    ]


# -- completion events (issue #12) ----------------------------------------------------------


def test_the_event_grid_topic_is_optional_entra_only_and_feeds_the_app_setting() -> None:
    main = template("main.bicep")
    switch = main["parameters"]["eventGridTopic"]
    assert switch["type"] == "bool"
    assert switch["default"] is False
    module = main["modules"]["eventGridTopicModule"]
    assert module["config"]["condition"] == "eventGridTopic"
    endpoint = body(main["modules"]["api"])["params"]["eventGridTopicEndpoint"]
    operands = endpoint["operator"]["operands"]
    assert operands["condition"] == "eventGridTopic"
    assert operands["false_value"] == ""
    topic = the_resource(template("app/eventgrid-topic.bicep"), "Microsoft.EventGrid/topics")
    assert topic["properties"]["disableLocalAuth"] is True
    assert topic["properties"]["inputSchema"] == "CloudEventSchemaV1_0"
    assert topic["properties"]["minimumTlsVersionAllowed"] == "1.2"
    site = the_resource(template("app/api.bicep"), "Microsoft.Web/sites")
    settings = {s["name"]: s["value"] for s in site["properties"]["siteConfig"]["appSettings"]}
    assert settings["EVENT_GRID_TOPIC_ENDPOINT"] == "eventGridTopicEndpoint"
    assert settings["EVENTS_QUEUE"] == "eventsQueueName"


def test_the_app_may_send_queue_messages_and_events_to_the_topic() -> None:
    # The poison queue's role (Storage Queue Data Contributor, account-wide) covers sending to
    # the events queue; the topic's sender role is the app's alone.
    assert ("appPrincipalId", "Storage Queue Data Contributor") in grants()
    assert ("appPrincipalId", "EventGrid Data Sender") in grants()
    assert ("userPrincipalId", "EventGrid Data Sender") not in grants()
