"""Batch transcription: ``/speechtotext/transcriptions...`` and the result files.

Operations (operationIds of the 2024-11-15 and 2025-10-15 specs): Submit, List, Get,
Update, Delete, ListFiles, GetFile, ListSupportedLocales. Result files are downloaded
from ``/results/{id}/{fileId}?sp=r&se=...&sig=...`` (the emulator's stand-in for Microsoft's
blob SAS URLs; ``Results_Download`` in the stats).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.emulator.catalog import SUBMIT_LOCALES, TRANSCRIBE_LOCALES
from local.emulator.clock import iso
from local.emulator.errors import bad_request, not_found
from local.emulator.jobs import Job, ResultFile
from local.emulator.odata import ENTITY_PROPERTIES, FilterError, PropertyType, compile_filter
from local.emulator.pipeline import Context, Kind, endpoint, paginated
from local.emulator.validation import update_fields

FILE_FILTER: dict[str, PropertyType] = {
    "name": "string",
    "createdDateTime": "datetime",
    "kind": "string",
}
#: "For speech resources that don't have BYOS enabled, the default SAS validity duration is
#: 12 hours" (spec, sasLifetimeMinutes).
DEFAULT_SAS_MINUTES = 12 * 60
#: A week: the longest lifetime the emulator signs (Blob user-delegation SAS maximum, 7 days).
MAX_SAS_MINUTES = 7 * 24 * 60
_XML_ERROR = (
    '<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code>'
    "<Message>{message}</Message></Error>"
)


def _filter(ctx: Context, schema: dict[str, PropertyType]) -> Any:
    try:
        return compile_filter(ctx.query("filter"), schema)
    except FilterError as exc:
        raise bad_request("UnsupportedFilter", f"The filter is not supported: {exc}") from None


def _job(ctx: Context) -> Job:
    job_id = ctx.request.path_params["id"]
    job = None
    if _is_uuid(job_id):
        job = ctx.emulator.jobs.get(job_id)
    if job is None:
        raise not_found(f"The transcription {job_id} does not exist.")
    return job


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True


def _retry_after(ctx: Context, jobs: list[Job]) -> dict[str, str]:
    """``Retry-After`` while any of ``jobs`` is still NotStarted or Running."""
    if any(not job.terminal for job in jobs):
        return {"Retry-After": str(ctx.emulator.settings.retry_after_seconds)}
    return {}


def _sas_lifetime(ctx: Context) -> dt.timedelta:
    raw = ctx.query("sasLifetimeMinutes")
    if raw is None:
        return dt.timedelta(minutes=DEFAULT_SAS_MINUTES)
    try:
        minutes = int(raw)
    except ValueError:
        minutes = 0
    if not 1 <= minutes <= MAX_SAS_MINUTES:
        raise bad_request(
            "InvalidSasValidityDuration",
            f"sasLifetimeMinutes must be an integer from 1 to {MAX_SAS_MINUTES}.",
        )
    return dt.timedelta(minutes=minutes)


def _file_document(
    ctx: Context, job: Job, file: ResultFile, lifetime: dt.timedelta
) -> dict[str, Any]:
    query = f"?api-version={ctx.api_version}"
    if file.blob_url is not None:
        content_url = file.blob_url
    else:
        path = f"/results/{job.id}/{file.id}"
        content_url = f"{ctx.base_url}{path}?{ctx.emulator.signer.sign(path, lifetime)}"
    return {
        "self": f"{ctx.base_url}/speechtotext/transcriptions/{job.id}/files/{file.id}{query}",
        "name": file.name,
        "kind": file.kind,
        "links": {"contentUrl": content_url},
        "properties": {"size": file.size},
        "createdDateTime": iso(file.created),
    }


@endpoint("Transcriptions_Submit", Kind.BATCH)
async def submit(ctx: Context) -> Response:
    """Create a job: 201 with the Transcription and ``Location``."""
    body = await ctx.json_body()
    spec = ctx.emulator.validator.submission(
        body, api_version=ctx.api_version, now=ctx.emulator.clock.now()
    )
    job = ctx.emulator.jobs.submit(spec)
    document = job.document(ctx.base_url, ctx.api_version)
    return JSONResponse(document, status_code=201, headers={"Location": document["self"]})


@endpoint("Transcriptions_List", Kind.BATCH)
async def list_transcriptions(ctx: Context) -> Response:
    """All jobs of the resource, oldest first, filtered and paged."""
    predicate = _filter(ctx, ENTITY_PROPERTIES)
    jobs = [job for job in ctx.emulator.jobs.all() if predicate(job.filter_item())]
    body, shown = paginated(ctx, jobs, lambda job: job.document(ctx.base_url, ctx.api_version))
    return JSONResponse(body, headers=_retry_after(ctx, shown))


@endpoint("Transcriptions_Get", Kind.BATCH)
async def get_transcription(ctx: Context) -> Response:
    """One job; ``Retry-After`` while it is not finished."""
    job = _job(ctx)
    return JSONResponse(
        job.document(ctx.base_url, ctx.api_version), headers=_retry_after(ctx, [job])
    )


@endpoint("Transcriptions_Update", Kind.BATCH)
async def update_transcription(ctx: Context) -> Response:
    """Change displayName, description or customProperties."""
    job = _job(ctx)
    body = await ctx.json_body(media_types=("application/json", "application/merge-patch+json"))
    media = ctx.request.headers.get("content-type", "").partition(";")[0].strip().lower()
    changes = update_fields(body, merge_patch=media == "application/merge-patch+json")
    ctx.emulator.jobs.update(job, changes)
    return JSONResponse(
        job.document(ctx.base_url, ctx.api_version), headers=_retry_after(ctx, [job])
    )


@endpoint("Transcriptions_Delete", Kind.BATCH)
async def delete_transcription(ctx: Context) -> Response:
    """204 for a finished or unknown job; a running one cannot be deleted.

    Microsoft's batch samples delete only finished jobs and say "If transcriptions are still
    running or not started, they will not be deleted" (Azure-Samples/
    cognitive-services-speech-sdk, samples/batch); the spec's DetailedErrorCode has
    ``DeleteNotAllowed`` for it.
    """
    job_id = ctx.request.path_params["id"]
    job = ctx.emulator.jobs.get(job_id) if _is_uuid(job_id) else None
    if job is not None:
        if not job.terminal:
            raise bad_request(
                "DeleteNotAllowed",
                f"The transcription {job.id} is {job.status} and cannot be deleted until it "
                "has Succeeded or Failed.",
            )
        ctx.emulator.jobs.delete(job)
    return Response(status_code=204)


@endpoint("Transcriptions_ListFiles", Kind.BATCH)
async def list_files(ctx: Context) -> Response:
    """The result files and the report (none until the job has finished)."""
    job = _job(ctx)
    lifetime = _sas_lifetime(ctx)
    predicate = _filter(ctx, FILE_FILTER)
    files = [f for f in job.files if predicate(f.filter_item())]
    extra = {}
    if ctx.query("sasLifetimeMinutes") is not None:
        extra["sasLifetimeMinutes"] = str(int(lifetime.total_seconds() // 60))
    body, _ = paginated(ctx, files, lambda f: _file_document(ctx, job, f, lifetime), extra=extra)
    return JSONResponse(body, headers=_retry_after(ctx, [job]))


@endpoint("Transcriptions_GetFile", Kind.BATCH)
async def get_file(ctx: Context) -> Response:
    """One file of a job."""
    job = _job(ctx)
    lifetime = _sas_lifetime(ctx)
    file_id = ctx.request.path_params["fileId"].lower()
    for file in job.files:
        if file.id == file_id:
            return JSONResponse(_file_document(ctx, job, file, lifetime))
    raise not_found(f"The file {file_id} does not exist in transcription {job.id}.")


@endpoint("Transcriptions_ListSupportedLocales", Kind.BATCH)
async def locales(ctx: Context) -> Response:
    """Locales for batch (``Submit``) and fast (``Transcribe``) transcription."""
    return JSONResponse({"Transcribe": list(TRANSCRIBE_LOCALES), "Submit": list(SUBMIT_LOCALES)})


def _storage_error(status: int, code: str, message: str) -> Response:
    return Response(
        _XML_ERROR.format(code=code, message=message),
        status_code=status,
        media_type="application/xml",
        headers={"x-ms-error-code": code},
    )


@endpoint("Results_Download", Kind.RESULTS)
async def download(ctx: Context) -> Response:
    """A result file, if the URL's signature is valid and unexpired (Blob-style 403 if not)."""
    request = ctx.request
    params = request.query_params
    path = request.url.path
    if not ctx.emulator.signer.verify(path, params.get("se"), params.get("sig")):
        return _storage_error(
            403,
            "AuthenticationFailed",
            "Server failed to authenticate the request. The signature is invalid or expired.",
        )
    job_id = request.path_params["id"]
    data = ctx.emulator.results.read(job_id, request.path_params["fileId"])
    if data is None or ctx.emulator.jobs.get(job_id) is None:
        return _storage_error(404, "BlobNotFound", "The specified blob does not exist.")
    return Response(data, media_type="application/json")


def routes() -> list[Route]:
    """The batch transcription routes (``locales`` before ``{id}``)."""
    base = "/speechtotext/transcriptions"
    return [
        Route(f"{base}:submit", submit, methods=["POST"]),
        Route(f"{base}/locales", locales, methods=["GET"]),
        Route(base, list_transcriptions, methods=["GET"]),
        Route(f"{base}/{{id}}", get_transcription, methods=["GET"]),
        Route(f"{base}/{{id}}", update_transcription, methods=["PATCH"]),
        Route(f"{base}/{{id}}", delete_transcription, methods=["DELETE"]),
        Route(f"{base}/{{id}}/files", list_files, methods=["GET"]),
        Route(f"{base}/{{id}}/files/{{fileId}}", get_file, methods=["GET"]),
        Route("/results/{id}/{fileId}", download, methods=["GET"]),
    ]
