"""checkov's Bicep policies on infra/: no failed check, and every skip justified in the template.

checkov lives in its own virtualenv (.venv/infra, from requirements-infra.txt) because it pins
packages that clash with ours; `make unit` builds it. It is run as a program and its JSON
report read back.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.infra.bicep import INFRA, ROOT

CHECKOV = ROOT / ".venv" / "infra" / "bin" / "checkov"

# Policies that do not fit this design, each justified by a `//checkov:skip=ID:reason` line
# inside the resource it concerns (the reasons are in the templates, not repeated here).
EXPECTED_SKIPS = {
    ("CKV_AZURE_35", "/app/storage.bicep"),  # storage default-deny network rule
    ("CKV_AZURE_59", "/app/storage.bicep"),  # storage public network access
    ("CKV_AZURE_206", "/app/storage.bicep"),  # storage replication beyond LRS
    ("CKV_AZURE_225", "/app/api.bicep"),  # zone-redundant plan
    ("CKV_AZURE_222", "/app/api.bicep"),  # function app public network access
    ("CKV_AZURE_17", "/app/api.bicep"),  # client certificates
    ("CKV_AZURE_212", "/app/api.bicep"),  # minimum instances for failover
    ("CKV_AZURE_213", "/app/api.bicep"),  # App Service health check
    ("CKV_AZURE_78", "/app/api.bicep"),  # FTPS state: not supported on Flex Consumption
    ("CKV_AZURE_134", "/app/speech.bicep"),  # Speech public network access
    ("CKV_AZURE_238", "/app/speech.bicep"),  # Speech managed identity
    ("CKV_AZURE_109", "/app/keyvault.bicep"),  # Key Vault default-deny firewall
    ("CKV_AZURE_189", "/app/keyvault.bicep"),  # Key Vault public network access
    ("CKV_AZURE_41", "/app/keyvault.bicep"),  # Key Vault secret expiry
    ("CKV_AZURE_193", "/app/eventgrid-topic.bicep"),  # Event Grid topic public network access
}


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: `make unit` installs it from requirements-infra.txt")
    # --skip-download: no call to Prisma Cloud for guidelines; the bundled policies only.
    completed = subprocess.run(  # noqa: S603 - a fixed program with fixed arguments
        [
            str(CHECKOV),
            *("--framework", "bicep", "--directory", str(INFRA)),
            *("--output", "json", "--skip-download"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode in (0, 1), completed.stderr[-2000:]
    parsed = json.loads(completed.stdout)
    assert isinstance(parsed, dict), "one framework, one report"
    assert parsed["check_type"] == "bicep"
    return parsed


def test_no_failed_check(report: dict[str, Any]) -> None:
    failed = [
        (c["check_id"], c["check_name"], c["file_path"], c["resource"])
        for c in report["results"]["failed_checks"]
    ]
    assert not failed
    assert report["summary"]["failed"] == 0


def test_every_template_was_scanned(report: dict[str, Any]) -> None:
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 0
    scanned = {c["file_path"] for c in report["results"]["passed_checks"]}
    assert {
        "/app/storage.bicep",
        "/app/api.bicep",
        "/app/speech.bicep",
        "/app/keyvault.bicep",
        "/app/eventgrid-topic.bicep",
    } <= scanned


def test_every_skip_is_expected_and_explained(report: dict[str, Any]) -> None:
    skipped = report["results"]["skipped_checks"]
    assert {(c["check_id"], c["file_path"]) for c in skipped} == EXPECTED_SKIPS
    for check in skipped:
        reason = check["check_result"]["suppress_comment"]
        assert len(reason) > 40, (check["check_id"], reason)
