"""Storage failures, classified once: what is worth retrying, and what a person must fix.

The SDK raises ``HttpResponseError`` subclasses whose text ends with the service's XML
body; a report shows only its first sentence and the service's error code. Not found,
forbidden, invalid and "condition not met" (a lease, a changed ETag) are permanent: the
same request fails the same way until someone acts. Throttling, 5xx and connection
failures are transient (Azure Storage's own guidance on retrying:
https://learn.microsoft.com/azure/storage/blobs/storage-retry-policy).
"""

from __future__ import annotations

from dataclasses import dataclass

#: HTTP statuses that mean "try again later".
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Readable texts for the codes people meet; others keep the service's first sentence.
_MESSAGES = {
    "ContainerNotFound": "the container does not exist",
    "BlobNotFound": "the blob does not exist",
    "AuthorizationPermissionMismatch": (
        "the app's identity lacks a data role on the storage account (Storage Blob Data "
        "Owner or Contributor)"
    ),
    "AuthorizationFailure": "the storage account refused the app's identity",
    "LeaseIdMissing": "the blob is leased: a lease holder must release it first",
    "LeaseIdMismatchWithBlobOperation": "the blob is leased by someone else",
    "ConditionNotMet": "the blob changed while it was being read",
}


@dataclass(frozen=True)
class StorageProblem:
    """One storage failure as the pipeline acts on it."""

    #: True when retrying cannot help.
    permanent: bool
    #: The service's error code (``ContainerNotFound``), or the failure's kind.
    code: str
    #: One readable sentence, no XML, no URL query.
    message: str


def _first_sentence(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line.split("RequestId:")[0].strip().rstrip(".") or "storage request failed"


def classify_storage_error(exc: BaseException) -> StorageProblem | None:
    """How to treat ``exc`` if it is a storage (azure-core) failure; None otherwise."""
    from azure.core.exceptions import (
        AzureError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return StorageProblem(False, "StorageUnreachable", "storage could not be reached")
    if isinstance(exc, HttpResponseError):
        status = exc.status_code or 0
        raw = getattr(exc, "error_code", None) or exc.reason or f"Http{status}"
        code = str(getattr(raw, "value", raw))  # the SDK may give a StorageErrorCode enum
        message = _MESSAGES.get(code) or _first_sentence(str(exc.message or exc))
        permanent = 400 <= status < 500 and status not in TRANSIENT_STATUSES
        return StorageProblem(permanent, code, message)
    if isinstance(exc, AzureError):
        return StorageProblem(False, type(exc).__name__, _first_sentence(str(exc)))
    return None
