"""The chaos suite: the whole offline stack misbehaves, and every file version still ends well.

One private stack (its own ports and state dir, so services can be stopped and killed)
runs the real app in the local functions host with timings shortened through app
settings: polls and sweeps every second, retries after half a second, claims stale after
six seconds. Each scenario asserts the end state through the ledger and the outputs:
every version ``Succeeded`` with the right words, or ``Failed`` with a report, or
``Superseded``; one job per submission (no duplicate); nothing left at the service.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.data.tables import TableClient
from azure.identity import DefaultAzureCredential
from azure.storage.blob import BlobServiceClient

from local.emulator.asr.wer import word_error_rate
from local.stack import ALL_SERVICES, Ports, Stack, StackInfo
from shared.pipeline.ledger.keys import source_partition
from shared.pipeline.ledger.records import SourceRecord, SourceState
from tests.host.harness import wait_for

pytestmark = pytest.mark.stack

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "speech"
SENTENCES: dict[str, str] = json.loads((FIXTURES / "sentences.json").read_text())["sentences"]
INPUT, OUTPUT, LEDGER = "audio-input", "transcripts", "transcriptionledger"
#: App settings for the host: the pipeline's clocks, shortened (never sleeps in the tests).
FAST = {
    "POLL_SCHEDULE": "*/1 * * * * *",
    "SWEEP_SCHEDULE": "*/1 * * * * *",
    "POLL_MIN_INTERVAL_SECONDS": "0.5",
    "POLL_MAX_INTERVAL_SECONDS": "2",
    "RETRY_BACKOFF_SECONDS": "0.5",
    "SWEEP_GRACE_SECONDS": "2",
    "INTAKE_STALE_MINUTES": "0.1",
    "LOCAL_BLOB_RETRY_SECONDS": "0.2",
    # Fail fast while a service is down, so the host's five attempts run out in seconds.
    "STORAGE_RETRY_TOTAL": "0",
    "STORAGE_CONNECT_TIMEOUT_SECONDS": "1",
    "SPEECH_MAX_ATTEMPTS": "1",
}


class Chaos:
    """The stack, its storage seen as an operator sees it, and the emulator's admin API."""

    def __init__(self, stack: Stack, info: StackInfo) -> None:
        self.stack = stack
        self.info = info
        credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
        self.blobs = BlobServiceClient(
            info.blob_endpoint, credential=credential, connection_verify=info.ca_bundle
        )
        self.ledger = TableClient.from_connection_string(
            info.env["LOCAL_STORAGE_CONNECTION_STRING"],
            LEDGER,
            connection_verify=info.ca_bundle,
        )
        self.admin = httpx.Client(base_url=info.speech_url, timeout=30)

    def upload(self, name: str, fixture: str) -> str:
        """Upload a fixture; the new version's ETag."""
        client = self.blobs.get_blob_client(INPUT, name)
        result = client.upload_blob((FIXTURES / fixture).read_bytes(), overwrite=True)
        return str(result["etag"]).strip('"')

    def rows(self, name: str) -> dict[str, SourceRecord]:
        """Every version of ``name`` in the ledger, by ETag (empty while storage is down)."""
        try:
            entities = self.ledger.query_entities(
                "PartitionKey eq @pk and Path eq @path",
                parameters={"pk": source_partition(INPUT), "path": name},
            )
            return {r.ref.etag: r for r in map(SourceRecord.from_entity, entities)}
        except Exception:
            return {}

    def state(self, name: str, etag: str) -> SourceState | None:
        row = self.rows(name).get(etag)
        return row.state if row else None

    def output(self, name: str) -> bytes | None:
        try:
            return self.blobs.get_blob_client(OUTPUT, name).download_blob().readall()
        except Exception:
            return None

    def settled(self, versions: dict[str, str], *, timeout: float = 90) -> dict[str, SourceRecord]:
        """Wait until every (name -> etag) version is terminal; the rows."""

        def terminal() -> dict[str, SourceRecord] | None:
            found = {name: self.rows(name).get(etag) for name, etag in versions.items()}
            if all(row is not None and not row.pending for row in found.values()):
                return {name: row for name, row in found.items() if row is not None}
            return None

        return wait_for(terminal, timeout=timeout, what=f"{sorted(versions)} to settle")

    def poisoned(self) -> int:
        """Blob versions the functions host gave up on (its poison count)."""
        response = httpx.get(
            f"{self.info.functions_url}/admin/host/status",
            headers={"x-functions-key": self.info.functions_master_key},
        )
        functions = response.raise_for_status().json()["functions"]
        return sum(int(f.get("poisoned", 0)) for f in functions)

    def faults(self, **changes: Any) -> None:
        self.admin.put("/admin/faults", json=changes).raise_for_status()

    def submits(self) -> int:
        stats = self.admin.get("/admin/stats").raise_for_status().json()
        by_status = stats["requests"]["byOperationAndStatus"].get("Transcriptions_Submit", {})
        return int(by_status.get("201", 0))

    def service_jobs(self) -> int:
        response = self.admin.get(
            "/speechtotext/transcriptions",
            params={"api-version": "2024-11-15"},
            headers={"Ocp-Apim-Subscription-Key": self.info.emulator_key},
        )
        return len(response.raise_for_status().json().get("values", []))

    def assert_transcript(self, name: str, fixture: str) -> None:
        text = (self.output(name + ".txt") or b"").decode()
        assert word_error_rate([SENTENCES[fixture]], [text]) <= 0.25, (name, text)
        assert self.output(name + ".json") is not None


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chaos]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in FAST.items():
            patch.setenv(name, value)
        stack = Stack(
            tmp_path_factory.mktemp("chaos"),
            ports=Ports.free(),
            services=ALL_SERVICES,
            echo=lambda _line: None,
        )
        try:
            info = stack.up()
            with info.identity_environment():
                yield Chaos(stack, info)
        finally:
            stack.down()


def test_the_service_forgets_its_jobs(chaos: Chaos) -> None:
    """Fault 3: a restart of Speech with jobs in flight; each file is submitted once more."""
    chaos.faults(job_start_delay_seconds=60)
    fixtures = {
        f"forgot/{uuid.uuid4().hex[:8]}.wav": f for f in ("sentence-03.wav", "sentence-05.wav")
    }
    versions = {name: chaos.upload(name, fixture) for name, fixture in fixtures.items()}
    wait_for(
        lambda: all(chaos.state(n, e) is SourceState.SUBMITTED for n, e in versions.items()),
        timeout=30,
        what="every file submitted",
    )
    chaos.stack.stop("emulator")
    chaos.stack.up()  # a fresh emulator: no jobs, no delay, counters at zero

    rows = chaos.settled(versions)

    for name, fixture in fixtures.items():
        assert rows[name].state is SourceState.SUCCEEDED, rows[name]
        assert rows[name].submissions == 2
        chaos.assert_transcript(name, fixture)
    jobs = {rows[name].job_id for name in fixtures}
    assert chaos.submits() == len(jobs), "one resubmission per job, none twice"
    wait_for(lambda: chaos.service_jobs() == 0, timeout=20, what="finished jobs deleted")


def test_the_host_is_killed_mid_flight(chaos: Chaos) -> None:
    """No duplicate job whatever the host was doing when it died."""
    before = chaos.submits()
    fixtures = {
        f"killed/{uuid.uuid4().hex[:8]}.wav": f
        for f in ("sentence-06.wav", "sentence-07.wav", "sentence-09.wav")
    }
    versions = {name: chaos.upload(name, fixture) for name, fixture in fixtures.items()}
    wait_for(lambda: any(chaos.rows(n) for n in versions), timeout=30, what="an intake")
    chaos.stack.stop("functions", kill=True)
    chaos.stack.up()

    rows = chaos.settled(versions)

    for name, fixture in fixtures.items():
        assert rows[name].state is SourceState.SUCCEEDED, rows[name]
        assert rows[name].submissions == 1
        chaos.assert_transcript(name, fixture)
    jobs = {rows[name].job_id for name in fixtures}
    assert chaos.submits() - before == len(jobs), "no duplicate jobs"


def test_an_overwrite_while_the_old_version_is_in_a_job(chaos: Chaos) -> None:
    """Fault 1 end to end: the short clip's transcript stands, the long file's never does."""
    name = f"ow/{uuid.uuid4().hex[:8]}.wav"
    chaos.faults(job_start_delay_seconds=3)
    old = chaos.upload(name, "sentence-14.wav")
    wait_for(lambda: chaos.state(name, old) is SourceState.SUBMITTED, timeout=30, what="submit")
    chaos.faults(job_start_delay_seconds=0)
    new = chaos.upload(name, "sentence-13.wav")

    chaos.settled({name: new})
    rows = chaos.settled({name: old})

    assert rows[name].state is SourceState.SUPERSEDED
    assert chaos.rows(name)[new].state is SourceState.SUCCEEDED
    chaos.assert_transcript(name, "sentence-13.wav")


def test_an_outage_longer_than_the_host_retries(chaos: Chaos) -> None:
    """Fault 2: the host gives up (poison); the sweep takes the blob in again.

    The ledger table goes away while the blob is delivered, so every one of the host's
    five attempts fails on storage. Last in the module: the table comes back empty.
    """
    name = f"outage/{uuid.uuid4().hex[:8]}.wav"
    poisoned = chaos.poisoned()
    chaos.ledger.delete_table()
    try:
        etag = chaos.upload(name, "sentence-01.wav")
        wait_for(lambda: chaos.poisoned() > poisoned, timeout=60, what="the host to give up")
        assert not chaos.rows(name), "nothing in the ledger: only the poison queue knows"
    finally:
        chaos.ledger.create_table()

    rows = chaos.settled({name: etag})

    assert rows[name].state is SourceState.SUCCEEDED, rows[name]
    assert rows[name].submissions == 1
    chaos.assert_transcript(name, "sentence-01.wav")
