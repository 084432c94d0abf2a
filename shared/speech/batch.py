"""Batch transcription: submit jobs, follow them, fetch their files, clean up."""

from __future__ import annotations

import json
from typing import Any

from shared.speech._client import (
    AsyncPager,
    BaseSpeechClient,
    and_filters,
    check_id,
    check_paging,
    odata_quote,
)
from shared.speech.endpoints import validate_service_url
from shared.speech.errors import SpeechError
from shared.speech.models import (
    FileKind,
    PaginatedFiles,
    PaginatedTranscriptions,
    Transcription,
    TranscriptionFile,
    TranscriptionLocales,
    TranscriptionReport,
    TranscriptionRequest,
    TranscriptionResult,
    TranscriptionUpdate,
)
from shared.speech.pipeline import TimeoutArg
from shared.speech.retry import RetryPolicy, parse_retry_after


def _check_sas_lifetime(minutes: int | None) -> None:
    # v3.2 called this sasValidityInSeconds; 2024-11-15 counts minutes.
    if minutes is not None and minutes < 1:
        raise ValueError("sas_lifetime_minutes must be >= 1")


class BatchTranscriptionClient(BaseSpeechClient):
    """The ``/speechtotext/transcriptions`` surface of one Speech resource."""

    async def submit_transcription(
        self,
        request: TranscriptionRequest,
        *,
        timeout: TimeoutArg = None,
        retry: RetryPolicy | None = None,
    ) -> Transcription:
        """Submit a job and return it as the service created it (status ``NotStarted``).

        Submitting is not idempotent, so this method re-sends only where the service
        cannot have created the job (no connection, or 429/503). When it raises a
        timeout or connection error with ``request_sent=True``, the job may exist: give
        each job a deterministic ``display_name`` and look it up with
        :meth:`find_transcriptions` before submitting again.
        """
        if not isinstance(request, TranscriptionRequest):
            raise TypeError("request must be a TranscriptionRequest")
        response = await self._send(
            "POST",
            "/transcriptions:submit",
            json=request.to_body(),
            idempotent=False,
            timeout=timeout,
            retry=retry,
        )
        body: dict[str, Any] = response.json() if response.content else {}
        if not body.get("self") and response.headers.get("location"):
            body["self"] = response.headers["location"]
        job = Transcription.model_validate(body)
        if not job.id:
            raise SpeechError("the service accepted the job but returned no id (no self/Location)")
        return job

    async def get_transcription(
        self, transcription_id: str, *, timeout: TimeoutArg = None, retry: RetryPolicy | None = None
    ) -> Transcription:
        """The job's current state; ``.retry_after`` holds the service's polling hint."""
        job_id = check_id(transcription_id, what="transcription_id")
        response = await self._send(
            "GET", f"/transcriptions/{job_id}", timeout=timeout, retry=retry
        )
        job = Transcription.model_validate(response.json())
        job._retry_after = parse_retry_after(response.headers)
        return job

    def list_transcriptions(
        self,
        *,
        filter: str | None = None,
        top: int | None = None,
        skip: int | None = None,
        timeout: TimeoutArg = None,
        retry: RetryPolicy | None = None,
    ) -> AsyncPager[Transcription]:
        """All jobs of the resource, optionally filtered (OData subset, see the spec)."""
        check_paging(top, skip)
        return self._paged(
            "/transcriptions",
            self._params(filter=filter, top=top, skip=skip),
            PaginatedTranscriptions,
            timeout=timeout,
            retry=retry,
        )

    def find_transcriptions(
        self, display_name: str, *, timeout: TimeoutArg = None
    ) -> AsyncPager[Transcription]:
        """Jobs whose ``displayName`` equals ``display_name`` exactly (crash recovery)."""
        if not display_name:
            raise ValueError("display_name must not be empty")
        return self.list_transcriptions(
            filter=f"displayName eq {odata_quote(display_name)}", timeout=timeout
        )

    def list_transcription_files(
        self,
        transcription_id: str,
        *,
        kind: FileKind | str | None = None,
        filter: str | None = None,
        sas_lifetime_minutes: int | None = None,
        top: int | None = None,
        skip: int | None = None,
        timeout: TimeoutArg = None,
        retry: RetryPolicy | None = None,
    ) -> AsyncPager[TranscriptionFile]:
        """The job's result files and report; ``kind`` narrows to one kind of file."""
        job_id = check_id(transcription_id, what="transcription_id")
        check_paging(top, skip)
        _check_sas_lifetime(sas_lifetime_minutes)
        kind_clause = None
        if kind is not None:
            try:
                kind_value = FileKind(kind).value
            except ValueError:
                known = ", ".join(k.value for k in FileKind)
                raise ValueError(f"kind must be one of {known}; got {kind!r}") from None
            kind_clause = f"kind eq {odata_quote(kind_value)}"
        return self._paged(
            f"/transcriptions/{job_id}/files",
            self._params(
                filter=and_filters(filter, kind_clause),
                sasLifetimeMinutes=sas_lifetime_minutes,
                top=top,
                skip=skip,
            ),
            PaginatedFiles,
            timeout=timeout,
            retry=retry,
        )

    async def get_transcription_file(
        self,
        transcription_id: str,
        file_id: str,
        *,
        sas_lifetime_minutes: int | None = None,
        timeout: TimeoutArg = None,
        retry: RetryPolicy | None = None,
    ) -> TranscriptionFile:
        """One file's metadata, with a fresh ``links.contentUrl``."""
        job_id = check_id(transcription_id, what="transcription_id")
        fid = check_id(file_id, what="file_id")
        _check_sas_lifetime(sas_lifetime_minutes)
        response = await self._send(
            "GET",
            f"/transcriptions/{job_id}/files/{fid}",
            params=self._params(sasLifetimeMinutes=sas_lifetime_minutes),
            timeout=timeout,
            retry=retry,
        )
        return TranscriptionFile.model_validate(response.json())

    async def download_file(
        self, content_url: str, *, timeout: TimeoutArg = None, retry: RetryPolicy | None = None
    ) -> bytes:
        """The bytes behind a file's ``links.contentUrl``.

        The URL carries its own SAS (or points into the caller's storage), so no Speech
        credentials are sent: a key or token must never reach a storage host.
        """
        validate_service_url(content_url, what="content_url")
        response = await self._pipeline.send(
            "GET", content_url, auth=None, idempotent=True, timeout=timeout, retry=retry
        )
        return response.content

    async def _download_json(self, file: TranscriptionFile, timeout: TimeoutArg) -> Any:
        url = file.links.content_url if file.links else None
        if not url:
            raise ValueError(f"file {file.name!r} has no links.contentUrl to download")
        data = await self.download_file(url, timeout=timeout)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise SpeechError(f"file {file.name!r} is not valid JSON: {exc}") from None

    async def download_result(
        self, file: TranscriptionFile, *, timeout: TimeoutArg = None
    ) -> TranscriptionResult:
        """A ``Transcription`` file's content, parsed."""
        return TranscriptionResult.model_validate(await self._download_json(file, timeout))

    async def download_report(
        self, file: TranscriptionFile, *, timeout: TimeoutArg = None
    ) -> TranscriptionReport:
        """A ``TranscriptionReport`` file's content, parsed."""
        return TranscriptionReport.model_validate(await self._download_json(file, timeout))

    async def update_transcription(
        self,
        transcription_id: str,
        update: TranscriptionUpdate,
        *,
        timeout: TimeoutArg = None,
        retry: RetryPolicy | None = None,
    ) -> Transcription:
        """Change a job's display name, description or custom properties."""
        job_id = check_id(transcription_id, what="transcription_id")
        body = update.to_body()
        if not body:
            raise ValueError(
                "update must set at least one of displayName, description, customProperties"
            )
        # Setting the same fields twice leaves the same job: safe to re-send.
        response = await self._send(
            "PATCH", f"/transcriptions/{job_id}", json=body, timeout=timeout, retry=retry
        )
        return Transcription.model_validate(response.json())

    async def delete_transcription(
        self,
        transcription_id: str,
        *,
        missing_ok: bool = False,
        timeout: TimeoutArg = None,
        retry: RetryPolicy | None = None,
    ) -> bool:
        """Delete a job and the result files the service keeps for it.

        Returns True when this call deleted it; with ``missing_ok`` a job that is already
        gone returns False instead of raising :class:`NotFoundError`.
        """
        job_id = check_id(transcription_id, what="transcription_id")
        return await self._delete(
            f"/transcriptions/{job_id}", missing_ok=missing_ok, timeout=timeout, retry=retry
        )

    async def get_supported_locales(
        self, *, timeout: TimeoutArg = None, retry: RetryPolicy | None = None
    ) -> TranscriptionLocales:
        """Locales the resource supports for ``submit`` and for fast ``transcribe``."""
        response = await self._send("GET", "/transcriptions/locales", timeout=timeout, retry=retry)
        return TranscriptionLocales.model_validate(response.json())
