"""azd wiring: azure.yaml, the parameters file and the postdeploy hooks agree with main.bicep."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.bicep import INFRA, ROOT, decorator_types, template

HOOKS = (INFRA / "hooks" / "postdeploy.sh", INFRA / "hooks" / "postdeploy.ps1")
# Set by azd itself in every environment, not by an output of main.bicep.
AZD_VARIABLES = {"AZURE_SUBSCRIPTION_ID"}
BINDING = re.compile(r"^\$\{(?P<name>[A-Z_][A-Z0-9_]*)(?:=(?P<default>[^}]*))?\}$")


def azure_yaml() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml.safe_load((ROOT / "azure.yaml").read_text())
    return parsed


def parameters_file() -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads((INFRA / "main.parameters.json").read_text())
    parameters: dict[str, Any] = parsed["parameters"]
    return parameters


def test_azure_yaml_deploys_the_repository_as_a_python_function_app() -> None:
    config = azure_yaml()
    assert config["name"]
    assert config["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    assert config["services"] == {"api": {"project": ".", "language": "python", "host": "function"}}


def test_postdeploy_hooks_exist_for_posix_and_windows() -> None:
    hook = azure_yaml()["hooks"]["postdeploy"]
    assert hook["posix"]["shell"] == "sh"
    assert hook["windows"]["shell"] == "pwsh"
    for platform, path in (("posix", HOOKS[0]), ("windows", HOOKS[1])):
        assert (ROOT / hook[platform]["run"]).resolve() == path
        assert hook[platform]["continueOnError"] is False


def azd_generated(declaration: dict[str, Any]) -> bool:
    """Whether azd generates the parameter's value (``@metadata({azd: {type: 'generate'}})``)."""
    for decorator in declaration.get("decorators", []):
        if decorator["type"] == "metadata":
            return bool(decorator["argument"].get("azd", {}).get("type") == "generate")
    return False


def test_parameters_file_binds_known_parameters_and_every_required_one() -> None:
    declared = template("main.bicep")["parameters"]
    bound = parameters_file()
    assert set(bound) <= set(declared)
    # azd generates the others on the first provision and keeps them in the environment's
    # config ("Work with Azure Developer CLI metadata for Bicep input parameters", generate).
    required = {
        name for name, p in declared.items() if p["default"] is None and not azd_generated(p)
    }
    assert required <= set(bound)
    assert bound["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert bound["location"]["value"] == "${AZURE_LOCATION}"
    assert bound["principalId"]["value"] == "${AZURE_PRINCIPAL_ID}"


def test_parameter_file_defaults_equal_the_bicep_defaults() -> None:
    declared = template("main.bicep")["parameters"]
    for name, binding in parameters_file().items():
        match = BINDING.match(binding["value"])
        assert match, name
        if match["default"] is not None:
            default = declared[name]["default"]
            # azd parses a bool parameter's string with Go's strconv.ParseBool
            expected = json.dumps(default) if isinstance(default, bool) else str(default)
            assert match["default"] == expected, name


def test_azd_generates_the_web_hook_secret_and_never_writes_it_to_dotenv() -> None:
    declared = template("main.bicep")["parameters"]
    secret = declared["speechWebhookSecret"]
    assert azd_generated(secret)
    assert "secure" in decorator_types(secret)
    assert secret["default"] is None
    # Unbound, so azd generates it instead of reading an environment variable.
    assert "speechWebhookSecret" not in parameters_file()
    assert parameters_file()["speechWebhooks"] == {"value": "${SPEECH_WEBHOOKS=false}"}
    assert parameters_file()["routing"] == {"value": "${ROUTING=batch}"}


def hook_variables(path: Path) -> set[str]:
    """The environment variables a hook reads."""
    text = path.read_text()
    if path.suffix == ".sh":
        return set(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", text))
    return set(re.findall(r"\$env:([A-Z][A-Z0-9_]+)", text))


@pytest.mark.parametrize("path", HOOKS, ids=lambda p: p.name)
def test_hooks_read_only_azd_outputs(path: Path) -> None:
    outputs = set(template("main.bicep")["outputs"])
    used = hook_variables(path)
    assert "AZURE_FUNCTION_NAME" in used
    assert used - AZD_VARIABLES <= outputs


@pytest.mark.parametrize("path", HOOKS, ids=lambda p: p.name)
def test_hooks_pass_every_subscription_parameter(path: Path) -> None:
    parameters = template("app/eventgrid-subscriptions.bicep")["parameters"]
    text = path.read_text()
    assert "eventgrid-subscriptions.bicep" in text
    for name, declaration in parameters.items():
        if "secure" in decorator_types(declaration):
            # in a private temporary file, never on a command line
            assert f'"{name}"' in text or f"{name} =" in text, name
            assert f"{name}=" not in text, name
        else:
            assert f"{name}=" in text, name


@pytest.mark.skipif(shutil.which("sh") is None, reason="no POSIX shell")
def test_posix_hook_is_valid_sh() -> None:
    completed = subprocess.run(  # noqa: S603 - a fixed program with fixed arguments
        [shutil.which("sh") or "sh", "-n", str(HOOKS[0])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
