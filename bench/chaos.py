"""Chaos: a large fault mix against the whole offline stack; no version lost, no job twice.

Starts a private stack (temp state dir, free ports, Azurite + identity + Speech emulator with
the whisper engine + the local functions host serving ``function_app.app``) with short
timings, uploads well over 100 spoken files to ``audio-input`` in waves and, meanwhile:

* keeps the emulator's quota on (the real 100 requests / 10 s) and injects random 500/503
  on 30 % of the batch requests (``error_rate`` 0.3) during the fault phase;
* has a few ``doomed/`` files that look like WAV but do not decode (the service fails them:
  Failed with a report), and fails each ``flaky/`` file twice (``fail_files``, kind
  ``Transient``: Retrying, submitted again, then Succeeded);
* uploads junk (garbage ``.wav`` bytes, an empty file: Rejected with a report) and
  overwrites some paths with another sentence while their first version is in flight;
* stops Azurite for a while right after a burst (deliveries in flight exhaust the host's
  five attempts: poison queue / spool, then the sweep);
* restarts the emulator while jobs are queued (its jobs are forgotten: resubmitted);
* kills the functions host (SIGKILL) while deliveries run, uploads a burst while it is down,
  then starts it again;
* once everything has settled, uploads two more flaky files: alone on a quiet stack, the
  same two versions fail, and are submitted again, together.

Then it waits (bounded) until every uploaded version is terminal in the ledger, and
classifies each version from the ledger table and the ``transcripts`` container:
succeeded (row Succeeded, ``<path>.json`` present; an overwritten path's ``.txt`` has the
NEW sentence, WER <= 0.3), failed-with-report (Failed/Rejected and ``<path>.error.json``
naming this version), superseded (an older version of an overwritten path), lost (anything
else). Duplicate jobs come from the emulator's ``submittedDisplayNames`` (the app names every
job deterministically, retries included): a name created twice within one emulator lifetime
is a duplicate; a name created again after the restart is counted apart (the app recreating
a job the restart made the emulator forget before the app had recorded it). The request
counters, summed over both lifetimes, give Speech calls per file. Exits 1 if anything was
lost or submitted twice.

    .venv/bin/python bench/chaos.py [--deadline 420] [--keep-logs DIR]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import struct
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local.emulator.asr.wer import word_error_rate  # noqa: E402
from local.stack import (  # noqa: E402
    ALL_SERVICES,
    AZURITE,
    EMULATOR,
    FUNCTIONS,
    Ports,
    Stack,
    StackInfo,
)
from local.stack.info import patched_environ  # noqa: E402

if TYPE_CHECKING:
    from azure.data.tables import TableClient
    from azure.storage.blob import BlobServiceClient, ContainerClient

FIXTURES = ROOT / "tests" / "fixtures" / "speech"
SENTENCES: dict[str, str] = json.loads((FIXTURES / "sentences.json").read_text())["sentences"]
CLIPS = sorted(name for name in SENTENCES if name.startswith("sentence-"))
INPUT = "audio-input"
OUTPUT = "transcripts"
LEDGER_TABLE = "transcriptionledger"
SOURCE_PARTITION = f"src|{INPUT}"
#: The ledger's job rows (shared/pipeline/ledger/keys.py): ``active`` / ``job|<id>``.
ACTIVE_PARTITION = "active"
JOB_PREFIX = "job|"
JOB_PREFIX_END = "job}"
JOB_SAMPLE_SECONDS = 0.5
TERMINAL = frozenset({"Succeeded", "Failed", "Rejected", "Superseded"})
#: The newest version of an overwritten path must carry its own sentence.
MAX_WER = 0.3
#: Any other transcript: well above what tiny.en makes of these clips (a few %), far
#: below another sentence's text.
MAX_WER_ANY = 0.5
TRANSCRIPT_FILES = (".txt", ".srt", ".vtt", ".json")

#: App settings for the functions host (the environment ``up()`` runs in is layer 2).
APP_SETTINGS: dict[str, str] = {
    "POLL_SCHEDULE": "*/1 * * * * *",
    "SWEEP_SCHEDULE": "*/2 * * * * *",
    "POLL_MIN_INTERVAL_SECONDS": "1",
    "POLL_MAX_INTERVAL_SECONDS": "5",
    "INTAKE_STALE_MINUTES": "0.25",
    "RETRY_BACKOFF_SECONDS": "1",
    "RETRY_MAX_SUBMISSIONS": "6",
    "SWEEP_GRACE_SECONDS": "5",
    # One quick storage retry, so that a delivery during the outage fails in well under
    # a second and the host's five attempts run out while Azurite is still down.
    "STORAGE_RETRY_TOTAL": "1",
    "STORAGE_RETRY_BACKOFF_SECONDS": "0.2",
    # The local host's blob-trigger retry backoff (doubling; 5 attempts, then poison).
    "LOCAL_BLOB_RETRY_SECONDS": "0.2",
}
ERROR_RATE = 0.3
#: Emulator start-up faults: also what the emulator comes back with after its restart.
EMULATOR_SETTINGS: dict[str, str] = {
    "EMULATOR_QUOTA_ENABLED": "true",
    "EMULATOR_ERROR_RATE": str(ERROR_RATE),
    "EMULATOR_FAIL_FILES": "*/flaky*/*",
    "EMULATOR_FAIL_FILES_KIND": "Transient",
    "EMULATOR_FAIL_FILES_TIMES": "2",
}

# The file mix (paths under one fresh folder).
STEADY, DOOMED, FLAKY, OUTAGE, RESTART, KILLED, HOST_DOWN = 30, 3, 4, 16, 20, 15, 15
#: Flaky files uploaded once everything else has settled.
QUIET_FLAKY = 2
OVERWRITE_AT_ONCE, OVERWRITE_IN_FLIGHT, OVERWRITE_LATER = 2, 4, 2
#: Overwrites across kinds: sentence -> junk at once and once settled, junk -> sentence.
OVERWRITE_ACROSS = 3
#: Azurite stays down at least this long, then until a delivery went to the poison queue.
AZURITE_MIN_DOWN_SECONDS = 10.0
AZURITE_MAX_DOWN_SECONDS = 60.0
EMULATOR_DOWN_SECONDS = 4.0
#: How long the emulator refuses everything before its counters are read and it stops.
DRAIN_SECONDS = 0.5
HOST_DOWN_SECONDS = 5.0
#: error_rate stays at 0.3 this long after the host is back, then goes to 0 (quota stays).
CALM_AFTER_SECONDS = 20.0


def etag_of(value: object) -> str:
    return str(value or "").strip().strip('"')


@dataclass
class Upload:
    """One uploaded blob version."""

    path: str
    etag: str
    #: The fixture it holds (``sentence-NN.wav``), or None for junk.
    clip: str | None
    group: str
    at: float


class Clock:
    """Seconds since the run began, and a timeline of what happened when."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.events: list[tuple[float, str]] = []

    def now(self) -> float:
        return time.monotonic() - self.start

    def event(self, text: str) -> None:
        at = self.now()
        self.events.append((at, text))
        print(f"  t+{at:6.1f}s  {text}", flush=True)

    def sleep_until(self, at: float) -> None:
        time.sleep(max(0.0, at - self.now()))


class SpeechCounts:
    """The emulator's counters, summed over its lifetimes (a restart resets them).

    Job names are kept per lifetime: a name twice in one lifetime is a duplicate job. A
    name again in a later lifetime is the app recreating a job the restart made the
    emulator forget before the app had recorded it (its lookup by name finds nothing):
    counted apart, as the real service never forgets a job that way.
    """

    def __init__(self) -> None:
        self.operations: collections.Counter[str] = collections.Counter()
        self.faults: collections.Counter[str] = collections.Counter()
        #: Jobs per display name, one Counter per ended lifetime.
        self.lifetimes: list[collections.Counter[str]] = []
        self._live: dict[str, Any] = {}

    def read(self, emulator: httpx.Client) -> dict[str, Any]:
        self._live = emulator.get("/admin/stats").json()
        return self._live

    def end_lifetime(self) -> None:
        """The emulator is about to stop: what it counted so far is final."""
        ops, names, faults = self._parts(self._live)
        self.operations.update(ops)
        self.faults.update(faults)
        self.lifetimes.append(collections.Counter(names))
        self._live = {}

    @staticmethod
    def _parts(snapshot: Mapping[str, Any]) -> tuple[dict[str, int], ...]:
        return (
            dict(snapshot.get("requests", {}).get("byOperation", {})),
            dict(snapshot.get("submittedDisplayNames", {})),
            dict(snapshot.get("faultsInjected", {})),
        )

    def totals(
        self,
    ) -> tuple[collections.Counter[str], list[collections.Counter[str]], collections.Counter[str]]:
        """Requests by operation, job names per lifetime, injected faults: all lifetimes."""
        ops, names, faults = self._parts(self._live)
        return (
            self.operations + collections.Counter(ops),
            [*self.lifetimes, collections.Counter(names)],
            self.faults + collections.Counter(faults),
        )


def doomed_files(rng: random.Random) -> dict[str, bytes]:
    """WAV headers over noise bytes: accepted by the intake, undecodable at the service."""
    return {
        f"doomed/{i:03d}.wav": b"RIFF" + struct.pack("<I", 4000) + b"WAVE" + rng.randbytes(4000)
        for i in range(DOOMED)
    }


def junk_files(rng: random.Random) -> dict[str, bytes]:
    return {
        "junk/garbage-1.wav": rng.randbytes(4096),
        "junk/garbage-2.wav": b"RIFX" + rng.randbytes(2000),
        "junk/not-audio.wav": (FIXTURES / "not-audio.wav").read_bytes(),
        "junk/empty.wav": b"",
    }


class Chaos:
    """One run: the stack, its clients, what was uploaded and what happened."""

    def __init__(self, stack: Stack, info: StackInfo, clock: Clock) -> None:
        from azure.data.tables import TableClient
        from azure.identity import DefaultAzureCredential
        from azure.storage.blob import BlobServiceClient

        self.stack = stack
        self.info = info
        self.clock = clock
        credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
        self.blobs: BlobServiceClient = BlobServiceClient(
            info.blob_endpoint,
            credential=credential,
            connection_verify=info.ca_bundle,
            retry_total=2,
        )
        self.input: ContainerClient = self.blobs.get_container_client(INPUT)
        self.output: ContainerClient = self.blobs.get_container_client(OUTPUT)
        self.table: TableClient = TableClient(
            info.table_endpoint,
            LEDGER_TABLE,
            credential=credential,
            connection_verify=info.ca_bundle,
        )
        # Its own client, no retries: it samples the job rows from a thread, storage down or not.
        self.jobs_table: TableClient = TableClient(
            info.table_endpoint,
            LEDGER_TABLE,
            credential=credential,
            connection_verify=info.ca_bundle,
            retry_total=0,
        )
        #: Display names of the jobs the app recorded in the ledger (sampled), and those
        #: seen before the emulator restart.
        self.recorded: set[str] = set()
        self.recorded_before_restart: set[str] = set()
        self._sampling = threading.Event()
        self._sampler = threading.Thread(target=self._sample_jobs, daemon=True)
        self.emulator = httpx.Client(base_url=info.speech_url, timeout=30)
        self.host = httpx.Client(
            base_url=info.functions_url,
            headers={"x-functions-key": info.functions_master_key},
            timeout=10,
        )
        self.folder = f"chaos-{uuid.uuid4().hex[:8]}/"
        self.uploads: list[Upload] = []
        self.speech = SpeechCounts()
        self.pool = ThreadPoolExecutor(8)
        self.rng = random.Random(20240611)  # noqa: S311 - test data, not secrets
        #: Deliveries the host gave up on, over its lifetimes.
        self.poisoned = 0
        #: Jobs the emulator still holds at the end, by status (finished ones get deleted).
        self.leftover: dict[str, int] = {}

    def close(self) -> None:
        self._sampling.set()
        if self._sampler.is_alive():
            self._sampler.join(timeout=10)
        self.jobs_table.close()
        self.pool.shutdown()
        self.emulator.close()
        self.host.close()
        self.table.close()
        self.blobs.close()

    def start_sampling(self) -> None:
        self._sampler.start()

    def _sample_jobs(self) -> None:
        """Every job row the app writes lives until its job is finished (polled at least
        once, ``POLL_MIN_INTERVAL_SECONDS`` after submission): sampling twice a second sees
        every job the app recorded."""
        query = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
        parameters = {"pk": ACTIVE_PARTITION, "lo": JOB_PREFIX, "hi": JOB_PREFIX_END}
        while not self._sampling.wait(JOB_SAMPLE_SECONDS):
            try:
                rows = self.jobs_table.query_entities(
                    query, parameters=parameters, select=["DisplayName"]
                )
                self.recorded.update(str(row.get("DisplayName") or "") for row in rows)
            except Exception:  # noqa: S112 - storage down: the rows wait, sample again
                continue

    # Uploads ---------------------------------------------------------------------------

    def _put(self, path: str, data: bytes, clip: str | None, group: str) -> Upload:
        blob = self.input.get_blob_client(self.folder + path)
        result = blob.upload_blob(data, overwrite=True)
        return Upload(self.folder + path, etag_of(result["etag"]), clip, group, self.clock.now())

    def upload(self, files: Mapping[str, tuple[bytes, str | None]], group: str) -> list[Upload]:
        """Upload ``{path: (data, clip)}`` in parallel; every version is tracked."""
        done = list(
            self.pool.map(
                lambda item: self._put(item[0], item[1][0], item[1][1], group), files.items()
            )
        )
        self.uploads.extend(done)
        return done

    def spoken(self, group: str, count: int, offset: int) -> dict[str, tuple[bytes, str | None]]:
        files: dict[str, tuple[bytes, str | None]] = {}
        for i in range(count):
            clip = CLIPS[(offset + i) % len(CLIPS)]
            files[f"{group}/{i:03d}-{clip}"] = ((FIXTURES / clip).read_bytes(), clip)
        return files

    def overwrite(self, old: Upload, group: str, *, junk: bool = False) -> tuple[Upload, str]:
        """Overwrite ``old``'s path with another sentence (or junk); the state ``old`` was in."""
        state = self.row_state(old)
        index = CLIPS.index(old.clip) if old.clip else len(self.uploads)
        clip = None if junk else CLIPS[(index + 7) % len(CLIPS)]
        data = self.rng.randbytes(3000) if clip is None else (FIXTURES / clip).read_bytes()
        path = old.path.removeprefix(self.folder)
        new = self.upload({path: (data, clip)}, group)[0]
        what = "junk" if clip is None else "another sentence"
        self.clock.event(f"overwrote {path} with {what} ({state})")
        return new, state

    # Observation -----------------------------------------------------------------------

    def rows(self) -> dict[tuple[str, str], dict[str, Any]]:
        """This run's source rows in the ledger, by (path, ETag)."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        entities = self.table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": SOURCE_PARTITION}
        )
        for entity in entities:
            path = str(entity.get("Path") or "")
            if path.startswith(self.folder) and not entity.get("Origin"):
                found[(path, etag_of(entity.get("ETag")))] = dict(entity)
        return found

    def row_state(self, upload: Upload) -> str:
        try:
            row = self.rows().get((upload.path, upload.etag))
        except Exception as exc:  # storage down: say so, the bench goes on
            return f"unknown ({type(exc).__name__})"
        return str(row["State"]) if row else "no row yet"

    def intake_in_flight(self) -> int:
        try:
            status = self.host.get("/admin/host/status").json()
        except (httpx.HTTPError, ValueError):
            return 0
        for function in status.get("functions", []):
            if function.get("name") == "audio_intake":
                return int(function.get("inFlight") or 0)
        return 0

    def host_poisoned(self) -> int:
        """Deliveries the running host gave up on (poison queue / spool) since it started."""
        try:
            status = self.host.get("/admin/host/status").json()
        except (httpx.HTTPError, ValueError):
            return 0
        return sum(
            int(f.get("poisoned") or 0)
            for f in status.get("functions", [])
            if f.get("name") == "audio_intake"
        )

    def emulator_jobs(self) -> int:
        """Jobs queued or running in the emulator right now."""
        jobs = self.speech.read(self.emulator).get("jobs", {})
        return int(jobs.get("NotStarted", 0)) + int(jobs.get("Running", 0))

    def wait_taken_in(self, upload: Upload, timeout: float = 20) -> bool:
        """Wait until ``upload`` has a row that is not settled yet (claimed or submitted)."""
        return self.wait(lambda: self.row_state(upload) in ("Received", "Submitted"), timeout)

    def wait(self, what: Callable[[], bool], timeout: float, step: float = 0.2) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if what():
                return True
            time.sleep(step)
        return False

    def latest(self) -> dict[str, Upload]:
        latest: dict[str, Upload] = {}
        for upload in self.uploads:
            latest[upload.path] = upload
        return latest

    def pending(self, rows: Mapping[tuple[str, str], Mapping[str, Any]]) -> list[Upload]:
        """Versions not settled yet: the latest without a terminal row, older non-terminal."""
        latest = self.latest()
        waiting = []
        for upload in self.uploads:
            row = rows.get((upload.path, upload.etag))
            state = str(row["State"]) if row else None
            if latest[upload.path] is upload:
                if state not in TERMINAL:
                    waiting.append(upload)
            elif state is not None and state not in TERMINAL:
                waiting.append(upload)
        return waiting

    # Faults ----------------------------------------------------------------------------

    def faults(self, **changes: object) -> None:
        self.emulator.put("/admin/faults", json=changes).raise_for_status()

    def run_faults(self) -> None:
        clock = self.clock
        rng = self.rng

        # Wave 1: steady files, junk, doomed and flaky ones, with overwrites in flight.
        files = self.spoken("steady", STEADY, 0)
        files |= {path: (data, None) for path, data in junk_files(rng).items()}
        files |= {path: (data, None) for path, data in doomed_files(rng).items()}
        files |= self.spoken("flaky", FLAKY, 5)
        first = self.upload(files, "wave 1")
        clock.event(
            f"wave 1: {len(first)} files ({STEADY} steady, 4 junk, {DOOMED} doomed, {FLAKY} flaky)"
        )
        steady = [u for u in first if u.group == "wave 1" and "/steady/" in u.path]
        for old in steady[:OVERWRITE_AT_ONCE]:
            self.overwrite(old, "overwrite")
        for old in steady[OVERWRITE_AT_ONCE : OVERWRITE_AT_ONCE + OVERWRITE_IN_FLIGHT]:
            self.wait_taken_in(old)
            self.overwrite(old, "overwrite")
        self.overwrite(steady[-1], "overwrite", junk=True)

        # Wave 2: a burst, then storage goes away under the deliveries.
        clock.sleep_until(25)
        burst = self.upload(self.spoken("outage", OUTAGE, 1), "outage")
        seen = self.wait(lambda: self.intake_in_flight() > 0, 5, step=0.05)
        in_flight = self.intake_in_flight()
        poisoned_before = self.host_poisoned()
        self.stack.stop(AZURITE)
        clock.event(
            f"wave 2: {len(burst)} files, then Azurite stopped "
            f"({in_flight if seen else 'no'} deliveries in flight)"
        )
        stopped = clock.now()
        # Down until the host has given up on a delivery (five failed attempts: poison
        # queue, spooled while storage is away), within bounds.
        time.sleep(AZURITE_MIN_DOWN_SECONDS)
        self.wait(
            lambda: self.host_poisoned() > poisoned_before, AZURITE_MAX_DOWN_SECONDS, step=0.5
        )
        poisoned_meanwhile = self.host_poisoned() - poisoned_before
        self.stack.up()
        down = clock.now() - stopped
        listed = {b.name: etag_of(b.etag) for b in self.input.list_blobs(self.folder)}
        latest = self.latest()
        missing = [p for p, u in latest.items() if listed.get(p) != u.etag]
        clock.event(
            f"Azurite up again after {down:.0f} s; the host gave up on {poisoned_meanwhile} "
            f"deliveries meanwhile (poison, spooled); blobs kept: "
            f"{len(latest) - len(missing)} of {len(latest)}"
        )

        # Wave 3: the emulator restarts with jobs queued: it forgets them.
        clock.sleep_until(max(clock.now(), 60))
        third = self.upload(self.spoken("restart", RESTART, 2), "restart")
        clock.event(f"wave 3: {len(third)} files")
        for old in third[:OVERWRITE_LATER]:
            self.wait_taken_in(old)
            self.overwrite(old, "overwrite")
        # Paths whose first version is long settled: a transcript replaced by a report and
        # a report by a transcript.
        self.overwrite(steady[-2], "overwrite", junk=True)
        self.overwrite(next(u for u in first if "garbage-1" in u.path), "overwrite")
        # Jobs in the emulator to forget: several one-file jobs, or at least one batch.
        if not self.wait(lambda: self.emulator_jobs() >= 5, 15, step=0.5):
            self.wait(lambda: self.emulator_jobs() >= 1, 30, step=0.5)
        # Its counters die with it: read them last, once nothing new can be created. A
        # quota of 1 request / 10 s refuses (429, Retry-After <= 10 s) whatever comes
        # between that read and the end of its graceful shutdown.
        self.faults(quota_requests=1, quota_window_seconds=10)
        time.sleep(DRAIN_SECONDS)
        queued = self.emulator_jobs()
        time.sleep(2 * JOB_SAMPLE_SECONDS)  # every job recorded so far has been sampled
        self.recorded_before_restart = set(self.recorded)
        self.stack.stop(EMULATOR)
        self.speech.end_lifetime()
        clock.event(
            f"emulator stopped with {queued} jobs queued or running (throttled to 1 request "
            f"/ 10 s for {DRAIN_SECONDS} s first, so its last counters miss no job)"
        )
        time.sleep(EMULATOR_DOWN_SECONDS)
        self.stack.up()
        clock.event("emulator up again (jobs forgotten; faults from its start-up settings)")

        # Wave 4: the host dies in the middle of deliveries; wave 5 lands while it is down.
        clock.sleep_until(clock.now() + 20)
        fourth = self.upload(self.spoken("killed", KILLED, 4), "killed")
        self.wait(lambda: self.intake_in_flight() > 0, 5, step=0.05)
        in_flight = self.intake_in_flight()
        self.poisoned += self.host_poisoned()  # the first host's lifetime ends here
        self.stack.stop(FUNCTIONS, kill=True)
        clock.event(f"wave 4: {len(fourth)} files, host killed ({in_flight} deliveries in flight)")
        fifth = self.upload(self.spoken("host-down", HOST_DOWN, 6), "host down")
        clock.event(f"wave 5: {len(fifth)} files while the host is down")
        time.sleep(HOST_DOWN_SECONDS)
        self.stack.up()
        clock.event("host up again")

        clock.sleep_until(clock.now() + CALM_AFTER_SECONDS)
        self.faults(error_rate=0.0)
        os.environ["EMULATOR_ERROR_RATE"] = "0"
        clock.event("fault phase over: error_rate 0.3 -> 0 (quota and fail_files stay)")

    def quiet_retry(self) -> None:
        """Two flaky files alone on a quiet stack: they fail, and are retried, together."""
        late = self.upload(self.spoken("flaky-late", QUIET_FLAKY, 9), "quiet")
        self.clock.event(
            f"quiet phase: {len(late)} flaky files while nothing else is pending (each fails "
            "twice, so the same versions are submitted three times, alone)"
        )

    def converge(self, deadline: float) -> dict[tuple[str, str], dict[str, Any]]:
        """Wait until every version is settled, or the deadline; the last rows read."""
        end = time.monotonic() + deadline
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        last_note = 0.0
        while True:
            try:
                rows = self.rows()
            except Exception as exc:
                print(f"  (ledger not readable: {type(exc).__name__})", flush=True)
            waiting = self.pending(rows)
            if not waiting:
                self.clock.event(f"every version settled ({len(self.uploads)} versions)")
                break
            if time.monotonic() > end:
                self.clock.event(f"deadline: {len(waiting)} versions not settled")
                break
            if time.monotonic() - last_note > 30:
                states = collections.Counter(
                    str(rows[(u.path, u.etag)]["State"]) if (u.path, u.etag) in rows else "no row"
                    for u in waiting
                )
                detail = ", ".join(f"{s} {n}" for s, n in sorted(states.items()))
                print(
                    f"  t+{self.clock.now():6.1f}s  waiting for {len(waiting)}: {detail}",
                    flush=True,
                )
                last_note = time.monotonic()
            time.sleep(2)
        # Deleting a finished job comes right after its outputs: let the last ones land.
        time.sleep(3)
        self.poisoned += self.host_poisoned()
        jobs = self.speech.read(self.emulator).get("jobs", {})
        self.leftover = {status: int(n) for status, n in jobs.items() if n}
        return rows

    # Verdict ---------------------------------------------------------------------------

    def text_of(self, name: str) -> str | None:
        try:
            return self.output.download_blob(name).readall().decode("utf-8")
        except Exception:
            return None

    def classify(
        self, rows: Mapping[tuple[str, str], Mapping[str, Any]]
    ) -> tuple[dict[str, list[Upload]], list[str], dict[str, list[float]]]:
        """{class: versions}, why each lost one is lost, and the WER of each transcript
        (of overwritten paths and of the others)."""
        outputs = {b.name for b in self.output.list_blobs(self.folder)}
        latest = self.latest()
        overwritten = {u.path for u in self.uploads if latest[u.path] is not u}
        verdict: dict[str, list[Upload]] = collections.defaultdict(list)
        why: list[str] = []
        wers: dict[str, list[float]] = {"overwritten": [], "other": []}

        def lost(upload: Upload, reason: str) -> None:
            verdict["lost"].append(upload)
            row = rows.get((upload.path, upload.etag))
            last = (
                "no ledger row"
                if row is None
                else f"State={row.get('State')} ErrorCode={row.get('ErrorCode') or '-'} "
                f"Submissions={row.get('Submissions') or 0} JobId={row.get('JobId') or '-'} "
                f"UpdatedAt={row.get('UpdatedAt')}"
            )
            why.append(
                f"{upload.path.removeprefix(self.folder)}@{upload.etag} ({upload.group}, "
                f"t+{upload.at:.1f}s): {reason}; {last}"
            )

        for upload in self.uploads:
            row = rows.get((upload.path, upload.etag))
            state = str(row["State"]) if row else None
            if latest[upload.path] is not upload:
                if state is None or state in TERMINAL:
                    verdict["superseded"].append(upload)
                else:
                    lost(upload, "an older version left pending")
                continue
            if state == "Succeeded":
                if upload.path + ".json" not in outputs:
                    lost(upload, "Succeeded without its .json")
                    continue
                if upload.path + ".error.json" in outputs:
                    lost(upload, "Succeeded, but an older version's .error.json is still there")
                    continue
                if upload.clip is not None:
                    text = self.text_of(upload.path + ".txt") or ""
                    wer = word_error_rate([SENTENCES[upload.clip]], [text])
                    changed = upload.path in overwritten
                    wers["overwritten" if changed else "other"].append(wer)
                    if wer > (MAX_WER if changed else MAX_WER_ANY):
                        lost(upload, f"the .txt is not this version's sentence (WER {wer:.2f})")
                        continue
                verdict["succeeded"].append(upload)
            elif state in ("Failed", "Rejected"):
                report = self.text_of(upload.path + ".error.json")
                if report is None:
                    lost(upload, f"{state} without .error.json")
                elif etag_of(json.loads(report).get("etag")) != upload.etag:
                    lost(upload, f"{state}, but the .error.json names another version")
                elif any(upload.path + ext in outputs for ext in TRANSCRIPT_FILES):
                    lost(upload, f"{state}, but an older version's transcript is still there")
                else:
                    verdict["failed-with-report"].append(upload)
            elif state == "Superseded":
                lost(upload, "the current version was marked Superseded")
            else:
                lost(upload, "not settled by the deadline" if state else "never taken in")
        return verdict, why, wers


def job_repeats(
    lifetimes: list[collections.Counter[str]], recorded_before_restart: set[str]
) -> tuple[dict[str, tuple[int, str]], list[str]]:
    """({name: (extra jobs, why)} for duplicates, [names recreated harmlessly]).

    A name created twice in one emulator lifetime is a duplicate. A name created again after
    the restart is one too if the app had recorded a job of that name before it (the app
    reused a job's name for another submission); if it had not, the app was recreating a
    job it never recorded, which the restart made the emulator forget (its lookup by name
    found nothing): harmless here, and impossible against the real service.
    """
    repeated: dict[str, tuple[int, str]] = {}
    recreated: list[str] = []
    for name in sorted(set().union(*lifetimes)):
        counts = [life[name] for life in lifetimes]
        within = sum(max(0, n - 1) for n in counts)
        across = sum(1 for n in counts if n) - 1
        reasons = []
        if within:
            lives = [str(i) for i, n in enumerate(counts, 1) if n > 1]
            reasons.append(f"within emulator lifetime {', '.join(lives)}")
        if across and name in recorded_before_restart:
            within += across
            reasons.append("again after the restart although the app had recorded it")
        elif across:
            recreated.append(name)
        if within:
            repeated[name] = (within, "; ".join(reasons))
    return repeated, recreated


def header(deadline: float) -> None:
    print("chaos: the whole offline stack under a fault mix (functions host, whisper engine)")
    print("  app settings: " + ", ".join(f"{k}={v}" for k, v in APP_SETTINGS.items()))
    print("  emulator:     " + ", ".join(f"{k}={v}" for k, v in EMULATOR_SETTINGS.items()))
    print(
        f"  files:        {STEADY} steady + 4 junk + {DOOMED} doomed (undecodable) + "
        f"{FLAKY} flaky (fail twice) in wave 1, {OUTAGE} before the Azurite outage, "
        f"{RESTART} before the emulator restart, {KILLED} before the host kill, "
        f"{HOST_DOWN} while the host is down, {QUIET_FLAKY} flaky once all settled; "
        f"{OVERWRITE_AT_ONCE + OVERWRITE_IN_FLIGHT + OVERWRITE_LATER} overwrites with another "
        f"sentence, {OVERWRITE_ACROSS} between sentence and junk"
    )
    print(
        f"  faults:       quota on throughout; error_rate {ERROR_RATE} until "
        f"{CALM_AFTER_SECONDS:.0f} s after the host restart, then 0; Azurite down "
        f"{AZURITE_MIN_DOWN_SECONDS:.0f}-{AZURITE_MAX_DOWN_SECONDS:.0f} s (until a delivery "
        f"is poisoned), emulator down {EMULATOR_DOWN_SECONDS:.0f} s, host "
        f"SIGKILLed and down {HOST_DOWN_SECONDS:.0f} s; settle deadline {deadline:.0f} s"
    )
    print("timeline:")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--deadline", type=float, default=420, help="seconds to wait for every version"
    )
    parser.add_argument("--keep-logs", type=Path, help="copy the stack's logs here at the end")
    args = parser.parse_args()

    clock = Clock()
    header(args.deadline)
    state = Path(tempfile.mkdtemp(prefix="chaos-"))
    stack = Stack(
        state,
        ports=Ports.free(),
        services=ALL_SERVICES,
        echo=lambda message: print(f"  t+{clock.now():6.1f}s  [stack] {message}", flush=True),
    )
    code = 0
    try:
        with patched_environ({**APP_SETTINGS, **EMULATOR_SETTINGS}):
            info = stack.up()
            clock.event("stack up")
            with info.identity_environment():
                chaos = Chaos(stack, info, clock)
                chaos.start_sampling()
                try:
                    fault_start = clock.now()
                    chaos.run_faults()
                    fault_end = clock.now()
                    rows = chaos.converge(args.deadline)
                    settled = clock.now()
                    chaos.quiet_retry()
                    rows = chaos.converge(max(60.0, args.deadline - (settled - fault_end)))
                    verdict, why, wers = chaos.classify(rows)
                    operations, lifetimes, faults = chaos.speech.totals()
                finally:
                    chaos.close()
        files = len(chaos.uploads)
        names: collections.Counter[str] = sum(lifetimes, collections.Counter())
        repeated, recreated = job_repeats(lifetimes, chaos.recorded_before_restart)
        duplicates = sum(n for n, _why in repeated.values())
        calls = sum(operations.values())
        lost = len(verdict["lost"])
        failure_codes = collections.Counter(
            f"{rows[(u.path, u.etag)].get('State')}/{rows[(u.path, u.etag)].get('ErrorCode')}"
            for u in verdict["failed-with-report"]
        )
        per_version = [int(row.get("Submissions") or 0) for row in rows.values()]
        submissions = sum(per_version)
        print("results:")
        print(
            f"  fault phase {fault_end - fault_start:.0f} s, settled {settled - fault_end:.0f} s "
            f"later; {len(chaos.latest())} paths, {files} versions"
        )
        print(
            "  failed-with-report by state/code: "
            + (", ".join(f"{c} {n}" for c, n in sorted(failure_codes.items())) or "none")
        )
        if wers["overwritten"]:
            print(
                f"  overwritten paths: {len(wers['overwritten'])} newest versions transcribed, "
                f"WER against the NEW sentence max {max(wers['overwritten']):.2f}"
            )
        if wers["other"]:
            print(
                f"  other transcripts: {len(wers['other'])}, WER mean "
                f"{sum(wers['other']) / len(wers['other']):.3f}, max {max(wers['other']):.2f}"
            )
        print(
            f"  Speech jobs {sum(names.values())} under {len(names)} display names "
            f"({len(chaos.recorded & set(names))} seen recorded in the ledger), "
            f"{len(recreated)} recreated after the emulator restart "
            f"(ledger: {submissions} submissions over all versions, at most "
            f"{max(per_version, default=0)} for one); host poison deliveries "
            f"{chaos.poisoned}; jobs left in the emulator "
            f"{sum(chaos.leftover.values())} {chaos.leftover or ''}; faults injected "
            + ", ".join(f"{k} {v}" for k, v in sorted(faults.items()))
        )
        print(
            "  Speech requests: "
            + ", ".join(
                f"{op.removeprefix('Transcriptions_')} {n}" for op, n in sorted(operations.items())
            )
        )
        for name, (count, reason) in sorted(repeated.items()):
            print(f"  DUPLICATE: {name!r}: {count + 1} jobs ({reason})")
        for name in recreated:
            print(
                f"  recreated after the emulator restart (never recorded by the app, then "
                f"forgotten by the emulator): {name!r}"
            )
        for line in why:
            print(f"  LOST: {line}")
        print(
            f"files {files} / succeeded {len(verdict['succeeded'])} / failed-with-report "
            f"{len(verdict['failed-with-report'])} / superseded {len(verdict['superseded'])} / "
            f"lost {lost} / duplicate jobs {duplicates} / Speech calls per file "
            f"{calls / files:.2f}"
        )
        code = 1 if lost or duplicates else 0
    finally:
        stack.down()
        if args.keep_logs:
            shutil.copytree(state / "logs", args.keep_logs, dirs_exist_ok=True)
        shutil.rmtree(state, ignore_errors=True)
        print(f"wall time {clock.now():.0f} s", flush=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
