"""The Speech request budget: plan within the quota instead of bouncing off it.

The batch REST quota is 100 requests per 10 seconds per resource ("Speech service quotas
and limits", https://learn.microsoft.com/azure/ai-services/speech-service/speech-services-quotas-and-limits).
``SPEECH_REQUESTS_PER_MINUTE`` (default 540, 90 % of it) is spent in 10-second windows of a
sixth each, counted in the ledger (:mod:`~.ledger.budget`), so every timer on every
instance draws from the same budget: the Functions runtime runs each timer as a singleton
(a blob lease), but two *different* timers may run at once on different instances. A
429 with ``Retry-After`` still pauses the caller; with the budget it is the exception.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from shared.pipeline.clock import utcnow

if TYPE_CHECKING:
    from shared.pipeline.ledger import Ledger

#: The quota's own window.
WINDOW_SECONDS = 10


class SpeechBudget:
    """Requests to the batch API left in the current window, shared through the ledger."""

    def __init__(self, ledger: Ledger, *, per_minute: int, pool: str = "") -> None:
        self._ledger = ledger
        self._pool = pool
        self.per_window = max(1, per_minute * WINDOW_SECONDS // 60)

    @classmethod
    def fast(cls, ledger: Ledger, *, per_minute: int) -> SpeechBudget:
        """The fast-transcription quota's budget (a pool of its own)."""
        return cls(ledger, per_minute=per_minute, pool="fast-")

    async def take(self, wanted: int, *, now: dt.datetime | None = None) -> int:
        """Reserve up to ``wanted`` requests now; how many may be made (0: wait)."""
        if wanted <= 0:
            return 0
        now = now or utcnow()
        epoch = int(now.timestamp()) // WINDOW_SECONDS
        start = dt.datetime.fromtimestamp(epoch * WINDOW_SECONDS, dt.UTC)
        return await self._ledger.take_budget(
            start, epoch, wanted=wanted, limit=self.per_window, pool=self._pool
        )
