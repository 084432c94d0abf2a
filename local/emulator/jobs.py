"""Batch transcription jobs: the in-memory store, the worker pool and the TTL sweep.

Life of a job, as the service describes it (batch-transcription-get.md):
``NotStarted`` (queued; ``EMULATOR_JOB_START_DELAY_SECONDS`` or a busy pool keeps it there)
-> ``Running`` (audio downloaded, decoded and transcribed file by file, in worker threads)
-> ``Succeeded`` if at least one file was transcribed, else ``Failed`` with
``properties.error``. Each input gets a line in ``report.json``; each success a
``contenturl_<n>.json`` (``n`` = position of the input), as in the docs' file listing.

Per-file failures use the error kinds of the service: ``InvalidUri`` when the audio cannot
be fetched (the Ingestion Client retries that kind), ``InvalidAudioFormat`` /
``EmptyAudioFile`` from decoding, ``AudioLengthLimitExceeded`` above
``EMULATOR_MAX_AUDIO_SECONDS`` (or 240 minutes with diarization, the documented limit),
``BadChannelConfiguration`` when no requested channel exists or diarization meets stereo
(issue Azure-Samples/cognitive-services-speech-sdk#1109). A job whose every file failed gets
``{"code": "InvalidUri"}`` if nothing could be fetched, otherwise the service's
``{"code": "InvalidData", "message": "The recordings URI contains invalid data."}``
(the message customers report in issues #399, #1109 and #1340 of that repository).
Failures injected by ``fail_files`` (see ``faults.py``) take the same path, before the
download, and so count towards that rule like real ones.

Each step is reported to the :class:`JobListener` (the web hooks, ``webhooks.py``) under the
name of the spec's ``WebHookEvents`` property: ``transcriptionCreation`` on submit,
``transcriptionProcessing`` when a job starts running, ``transcriptionCompletion`` when it
Succeeded or Failed, ``transcriptionDeletion`` when it is deleted (by the API or the TTL
sweep; forgetting every job, as a restart does, reports nothing). The listener only queues
work, so a slow receiver never holds up a worker.

Jobs live in memory only: a restart loses them (in-flight ones included) and their files;
``POST /admin/jobs:forget`` (:meth:`JobManager.clear`) does the same without a restart.
Terminal jobs are deleted ``timeToLiveHours`` after they finished by a background sweep;
results written to a ``destinationContainerUrl`` stay, as the spec's remark says.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import itertools
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from local.emulator.asr import AudioDecodeError
from local.emulator.asr.results import batch_result
from local.emulator.clock import Clock, iso
from local.emulator.faults import FaultState
from local.emulator.recognition import Recognizer
from local.emulator.stats import Stats
from local.emulator.storage import (
    BlobTransfer,
    ContainerRef,
    ResultStore,
    TransferError,
    strip_query,
)
from local.emulator.validation import JobSpec, check_custom_properties

_log = logging.getLogger(__name__)

STATUSES = ("NotStarted", "Running", "Succeeded", "Failed")
TERMINAL = frozenset({"Succeeded", "Failed"})
#: "Max audio input file size: 1 GB" (Speech service quotas and limits, batch).
MAX_BATCH_FILE_BYTES = 1024**3
#: "Max audio length for transcriptions with diarization enabled: 240 minutes per file".
MAX_DIARIZATION_SECONDS = 240 * 60.0
ALL_FAILED_MESSAGE = "The recordings URI contains invalid data."
#: Event names as the spec's ``WebHookEvents`` spells them.
CREATED = "transcriptionCreation"
PROCESSING = "transcriptionProcessing"
COMPLETED = "transcriptionCompletion"
DELETED = "transcriptionDeletion"


@dataclass
class ResultFile:
    """One file of a finished job (a result or the report)."""

    id: str
    name: str
    kind: str  # "Transcription" | "TranscriptionReport"
    created: dt.datetime
    size: int
    #: Where a destinationContainerUrl job wrote it (no SAS); None = kept by the emulator.
    blob_url: str | None = None

    def filter_item(self) -> dict[str, Any]:
        """The properties the files' ``filter`` supports."""
        return {"name": self.name, "kind": self.kind, "createdDateTime": self.created}


@dataclass
class Job:
    """A transcription: the validated request plus its state."""

    id: str
    spec: JobSpec
    created: dt.datetime
    last_action: dt.datetime
    status: str = "NotStarted"
    duration_ms: int | None = None
    error: dict[str, str] | None = None
    files: list[ResultFile] = field(default_factory=list)
    finished: dt.datetime | None = None
    #: Submission order, which breaks ties between equal (whole-second) creation times.
    sequence: int = field(default_factory=itertools.count().__next__)

    @property
    def terminal(self) -> bool:
        """True once the job Succeeded or Failed."""
        return self.status in TERMINAL

    def filter_item(self) -> dict[str, Any]:
        """The properties the transcriptions' ``filter`` supports."""
        return {
            "displayName": self.spec.display_name,
            "description": self.spec.description,
            "createdDateTime": self.created,
            "lastActionDateTime": self.last_action,
            "status": self.status,
            "locale": self.spec.locale,
        }

    def document(self, base_url: str, api_version: str) -> dict[str, Any]:
        """The ``Transcription`` response body (contentUrls and SAS URLs never echoed)."""
        query = f"?api-version={api_version}"
        root = f"{base_url}/speechtotext"
        body: dict[str, Any] = {
            "self": f"{root}/transcriptions/{self.id}{query}",
            "displayName": self.spec.display_name,
        }
        if self.spec.description is not None:
            body["description"] = self.spec.description
        if self.spec.custom_properties:
            body["customProperties"] = dict(self.spec.custom_properties)
        body["locale"] = self.spec.locale
        body["createdDateTime"] = iso(self.created)
        body["lastActionDateTime"] = iso(self.last_action)
        if self.spec.model is not None:
            kind = "base/" if self.spec.model.kind == "base" else ""
            body["model"] = {"self": f"{root}/models/{kind}{self.spec.model.id}{query}"}
        body["links"] = {"files": f"{root}/transcriptions/{self.id}/files{query}"}
        properties = dict(self.spec.properties)
        if self.duration_ms is not None:
            properties["durationMilliseconds"] = self.duration_ms
        if self.error is not None:
            properties["error"] = dict(self.error)
        body["properties"] = properties
        body["status"] = self.status
        return body


class JobListener(Protocol):
    """Told about each step of a job's life (see the module docstring); must not block."""

    def job_event(self, event: str, job: Job) -> None:
        """``job`` just went through ``event`` (a ``WebHookEvents`` name)."""
        ...


@dataclass(frozen=True)
class _FileFailure:
    kind: str
    message: str


@dataclass(frozen=True)
class _Transcribed:
    document: dict[str, Any]
    seconds: float


class JobManager:
    """Owns every job: submission, the bounded worker pool, deletion and the TTL sweep."""

    def __init__(
        self,
        *,
        clock: Clock,
        results: ResultStore,
        transfer: BlobTransfer,
        recognizer: Recognizer,
        stats: Stats,
        faults: FaultState,
        workers: int,
        max_audio_seconds: float,
        sweep_interval_seconds: float,
        listener: JobListener | None = None,
    ) -> None:
        self._clock = clock
        self._results = results
        self._transfer = transfer
        self._recognizer = recognizer
        self._stats = stats
        self._faults = faults
        self._workers = workers
        self._max_audio_seconds = max_audio_seconds
        self._sweep_interval = sweep_interval_seconds
        self._listener = listener
        self._jobs: dict[str, Job] = {}
        self._queue: asyncio.Queue[str] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle ---------------------------------------------------------------------

    def ensure_started(self) -> None:
        """Start the workers and the sweep on the running loop (first request or lifespan)."""
        if self._queue is not None:
            return
        self._queue = asyncio.Queue()
        self._tasks = [
            asyncio.create_task(self._worker(), name=f"speech-emulator-worker-{n}")
            for n in range(self._workers)
        ]
        self._tasks.append(asyncio.create_task(self._sweeper(), name="speech-emulator-sweep"))

    async def aclose(self) -> None:
        """Stop the workers and the sweep."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._queue = None

    # -- store -------------------------------------------------------------------------

    def submit(self, spec: JobSpec) -> Job:
        """Create a job and queue it (after the configured start delay)."""
        self.ensure_started()
        assert self._queue is not None  # ensure_started created it
        now = self._clock.now()
        job = Job(id=str(uuid.uuid4()), spec=spec, created=now, last_action=now)
        self._jobs[job.id] = job
        self._stats.count_submission(spec.display_name)
        delay = self._faults.config.job_start_delay_seconds
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self._queue.put_nowait, job.id)
        else:
            self._queue.put_nowait(job.id)
        self._notify(CREATED, job)
        return job

    def get(self, job_id: str) -> Job | None:
        """The job with this id (any case), or None."""
        return self._jobs.get(job_id.lower())

    def all(self) -> list[Job]:
        """Every job, oldest first."""
        return sorted(self._jobs.values(), key=lambda j: (j.created, j.sequence))

    def delete(self, job: Job, *, notify: bool = True) -> None:
        """Forget a job and delete the files the emulator kept for it.

        ``notify=False`` skips ``transcriptionDeletion`` (a restart tells nobody).
        """
        if self._jobs.get(job.id) is job:
            del self._jobs[job.id]
            if notify:
                self._notify(DELETED, job)
        self._results.delete_job(job.id)

    def clear(self) -> int:
        """Delete every job, as a restart would; return how many there were.

        Used by ``POST /admin/jobs:forget`` and ``POST /admin/reset?jobs=true``. Queued and
        delayed jobs are skipped when their turn comes; a running one stops after its current
        file and leaves nothing behind (see :meth:`_current`).
        """
        jobs = list(self._jobs.values())
        for job in jobs:
            self.delete(job, notify=False)
        return len(jobs)

    def counts(self) -> dict[str, int]:
        """How many jobs are in each status."""
        counts = dict.fromkeys(STATUSES, 0)
        for job in self._jobs.values():
            counts[job.status] += 1
        return counts

    def update(self, job: Job, changes: dict[str, Any]) -> None:
        """Apply a validated ``Transcriptions_Update`` (see ``validation.update_fields``)."""
        spec = job.spec
        if "displayName" in changes:
            spec.display_name = changes["displayName"]
        if "description" in changes:
            spec.description = changes["description"]
        if "customProperties" in changes:
            spec.custom_properties = changes["customProperties"]
        if "customPropertiesPatch" in changes:
            merged = dict(spec.custom_properties or {})
            for key, value in changes["customPropertiesPatch"].items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            spec.custom_properties = check_custom_properties(merged) or None

    def sweep(self) -> int:
        """Delete terminal jobs whose time to live has passed; return how many."""
        now = self._clock.now()
        expired = [
            job
            for job in self._jobs.values()
            if job.finished is not None
            and job.finished + dt.timedelta(hours=job.spec.properties["timeToLiveHours"]) <= now
        ]
        for job in expired:
            self.delete(job)
        return len(expired)

    # -- processing --------------------------------------------------------------------

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            swept = self.sweep()
            if swept:
                _log.info("deleted %d transcription(s) past their time to live", swept)

    async def _worker(self) -> None:
        assert self._queue is not None  # started by ensure_started
        queue = self._queue
        while True:
            job_id = await queue.get()
            job = self._jobs.get(job_id)
            if job is None or job.status != "NotStarted":
                continue
            try:
                await self._run(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.exception("transcription %s failed unexpectedly", job.id)
                self._finish(job, error={"code": "Internal", "message": "Internal error."})

    def _current(self, job: Job) -> bool:
        """False once the job was deleted (reset) while it ran."""
        return self._jobs.get(job.id) is job

    def _notify(self, event: str, job: Job) -> None:
        if self._listener is None:
            return
        try:
            self._listener.job_event(event, job)
        except Exception:
            # Notifications are a side channel: a bug there must not fail the job.
            _log.exception("reporting %s of transcription %s failed", event, job.id)

    def _finish(self, job: Job, *, error: dict[str, str] | None) -> None:
        now = self._clock.now()
        job.status = "Failed" if error else "Succeeded"
        job.error = error
        job.last_action = now
        job.finished = now
        if self._current(job):
            self._notify(COMPLETED, job)

    async def _sources(self, job: Job) -> list[tuple[str, str]]:
        """(source as reported, URL to fetch) for every input of the job."""
        spec = job.spec
        if spec.content_urls is not None:
            return [(strip_query(url), url) for url in spec.content_urls]
        assert spec.container_url is not None  # validation requires one source
        container = ContainerRef.parse(spec.container_url)
        names = await self._transfer.list_blobs(container)
        # The result's source for container input is the blob path (FORMAT.md).
        return [(name, container.blob_url(name)) for name in names]

    async def _run(self, job: Job) -> None:
        job.status = "Running"
        job.last_action = self._clock.now()
        self._notify(PROCESSING, job)
        if self._faults.config.job_must_fail(job.spec.display_name):
            self._stats.count_fault("job")
            self._finish(
                job,
                error={
                    "code": "Internal",
                    "message": "The transcription failed because of an internal error "
                    "(injected by the emulator's fault settings).",
                },
            )
            return
        try:
            sources = await self._sources(job)
        except (TransferError, ValueError) as exc:
            self._finish(job, error={"code": "InvalidUri", "message": str(exc)})
            return
        if not sources:
            self._finish(
                job,
                error={"code": "InvalidData", "message": "The container holds no audio files."},
            )
            return

        outputs: list[tuple[str, str, bytes]] = []  # (name, kind, data)
        details: list[dict[str, str]] = []
        total_ms = 0
        for index, (source, url) in enumerate(sources):
            outcome = await self._transcribe(job, source, url)
            if not self._current(job):
                return
            if isinstance(outcome, _FileFailure):
                self._stats.count_file("Failed")
                details.append(
                    {
                        "source": source,
                        "status": "Failed",
                        "errorKind": outcome.kind,
                        "errorMessage": outcome.message,
                    }
                )
                continue
            self._stats.count_file("Succeeded")
            total_ms += round(outcome.seconds * 1000)
            data = json.dumps(outcome.document, ensure_ascii=False).encode()
            outputs.append((f"contenturl_{index}.json", "Transcription", data))
            details.append({"source": source, "status": "Succeeded"})
        succeeded = sum(1 for d in details if d["status"] == "Succeeded")
        report = {
            "successfulTranscriptionsCount": succeeded,
            "failedTranscriptionsCount": len(details) - succeeded,
            "details": details,
        }
        outputs.append(("report.json", "TranscriptionReport", json.dumps(report).encode()))
        try:
            files = await self._store(job, outputs)
        except TransferError as exc:
            self._finish(job, error={"code": "InaccessibleCustomerStorage", "message": str(exc)})
            return
        if not self._current(job):
            self._results.delete_job(job.id)
            return
        job.files = files
        job.duration_ms = total_ms
        error = None
        if not succeeded:
            unreachable = all(d.get("errorKind") == "InvalidUri" for d in details)
            error = (
                {"code": "InvalidUri", "message": "None of the recordings URIs is accessible."}
                if unreachable
                else {"code": "InvalidData", "message": ALL_FAILED_MESSAGE}
            )
        self._finish(job, error=error)

    async def _store(self, job: Job, outputs: list[tuple[str, str, bytes]]) -> list[ResultFile]:
        now = self._clock.now()
        files = []
        destination = (
            ContainerRef.parse(job.spec.destination_url) if job.spec.destination_url else None
        )
        for name, kind, data in outputs:
            file = ResultFile(
                id=str(uuid.uuid4()), name=name, kind=kind, created=now, size=len(data)
            )
            if destination is not None:
                # One folder per transcription (under the URL's folder, if it names one), so
                # jobs sharing a container never overwrite each other's files.
                path = f"{destination.prefix}{job.id}/{name}"
                url = await self._transfer.upload(destination, path, data)
                file = dataclasses.replace(file, blob_url=url)
            else:
                self._results.write(job.id, file.id, data)
            files.append(file)
        return files

    async def _transcribe(self, job: Job, source: str, url: str) -> _FileFailure | _Transcribed:
        spec = job.spec
        injected = self._faults.file_failure(url)
        if injected is not None:
            self._stats.count_fault("file")
            return _FileFailure(injected.kind, injected.message)
        try:
            data = await self._transfer.download(url, max_bytes=MAX_BATCH_FILE_BYTES)
        except TransferError as exc:
            return _FileFailure("InvalidUri", str(exc))
        try:
            info = await self._recognizer.probe(data)
            diarize, max_speakers = spec.diarization
            limit = self._max_audio_seconds
            if diarize:
                limit = min(limit, MAX_DIARIZATION_SECONDS)
            if info.duration_seconds > limit:
                return _FileFailure(
                    "AudioLengthLimitExceeded",
                    f"The audio file is {info.duration_seconds:.0f} seconds long; the "
                    f"maximum is {limit:.0f} seconds.",
                )
            audio = await self._recognizer.decode(data)
        except AudioDecodeError as exc:
            return _FileFailure(exc.kind, str(exc))
        del data
        channels = [c for c in spec.channels if c < len(audio.channels)]
        if not channels:
            return _FileFailure(
                "BadChannelConfiguration",
                f"The audio has {len(audio.channels)} channel(s); the requested channels "
                f"{spec.channels} do not exist in it.",
            )
        if diarize and len(channels) > 1:
            return _FileFailure(
                "BadChannelConfiguration",
                "Diarization needs mono audio; this file is stereo. Select one channel.",
            )
        properties = spec.properties
        word_timestamps = properties["wordLevelTimestampsEnabled"]
        display_words = properties["displayFormWordLevelTimestampsEnabled"]
        per_channel: list[list[Any]] = [[] for _ in range(max(channels) + 1)]
        try:
            for channel in channels:
                per_channel[channel] = await self._recognizer.transcribe(
                    audio.channels[channel],
                    language=spec.locale,
                    word_timestamps=word_timestamps or display_words,
                )
        except Exception:
            _log.exception("engine failed on a file of transcription %s", job.id)
            return _FileFailure("Internal", "An internal error occurred during transcription.")
        self._stats.add_audio(audio.duration_seconds * len(channels))
        document = batch_result(
            source,
            audio,
            per_channel,
            word_timestamps=word_timestamps,
            display_words=display_words,
            diarization=diarize,
            max_speakers=max_speakers,
            # Phrases carry a locale only with language identification (FORMAT.md).
            locale=spec.locale if "languageIdentification" in properties else None,
            profanity=properties["profanityFilterMode"],
            punctuation=properties["punctuationMode"],
            timestamp=self._clock.now(),
        )
        # Channels that exist in the list only as placeholders were not asked for.
        document["combinedRecognizedPhrases"] = [
            c for c in document["combinedRecognizedPhrases"] if c["channel"] in channels
        ]
        return _Transcribed(document, audio.duration_seconds)
