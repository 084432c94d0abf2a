"""The web hook row: which Speech web hook this app registered, and how it was last found.

One row (``active / hook|speech``). The sweep rewrites it after each check; the poller reads
it to know whether completions are announced (then polling is only the backstop).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from shared.pipeline.ledger.keys import ACTIVE_PARTITION, HOOK_ROW
from shared.pipeline.ledger.records import as_utc, clip_message
from shared.pipeline.ledger.table import TableAccess


@dataclass
class HookState:
    """What the last check found."""

    hook_id: str | None = None
    #: The service's status of the hook: NotStarted (challenge pending), Succeeded, Failed.
    status: str | None = None
    checked_at: dt.datetime | None = None
    #: A digest of the secret the hook was registered with: a rotated secret is pushed.
    secret_digest: str | None = None
    #: The URL it delivers to.
    web_url: str | None = None
    #: True once a re-enable (an update) was tried on a Failed hook; next time it is replaced.
    reenable_tried: bool = False
    message: str | None = None
    row_etag: str = ""

    @property
    def healthy(self) -> bool:
        """The hook passed its challenge and the service has not disabled it."""
        return self.hook_id is not None and self.status == "Succeeded"


class HookRows(TableAccess):
    """Read and write the web hook row."""

    async def get_hook(self) -> HookState:
        """The stored state (an empty one before the first check)."""
        entity = await self._get(ACTIVE_PARTITION, HOOK_ROW)
        if entity is None:
            return HookState()
        meta = getattr(entity, "metadata", {}) or {}
        return HookState(
            hook_id=str(entity["HookId"]) if entity.get("HookId") else None,
            status=str(entity["Status"]) if entity.get("Status") else None,
            checked_at=as_utc(entity.get("CheckedAt")),
            secret_digest=str(entity["SecretDigest"]) if entity.get("SecretDigest") else None,
            web_url=str(entity["WebUrl"]) if entity.get("WebUrl") else None,
            reenable_tried=bool(entity.get("ReenableTried")),
            message=str(entity["Message"]) if entity.get("Message") else None,
            row_etag=str(meta.get("etag") or ""),
        )

    async def save_hook(self, state: HookState) -> bool:
        """Store ``state`` unless another checker wrote the row since it was read."""
        fields = {
            "HookId": state.hook_id or "",
            "Status": state.status or "",
            "CheckedAt": state.checked_at,
            "SecretDigest": state.secret_digest or "",
            "WebUrl": state.web_url or "",
            "ReenableTried": state.reenable_tried,
            "Message": clip_message(state.message),
        }
        if not state.row_etag:
            etag = await self._create(
                {"PartitionKey": ACTIVE_PARTITION, "RowKey": HOOK_ROW, **fields}
            )
        else:
            etag = await self._merge(ACTIVE_PARTITION, HOOK_ROW, fields, state.row_etag)
        if etag is None:
            return False
        state.row_etag = etag
        return True
