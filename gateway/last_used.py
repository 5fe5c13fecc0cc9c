"""``Credential.last_used_at`` kept current without a database write per request.

The proxy notes each use in memory; a background task writes the latest time per credential every
``LAST_USED_FLUSH_SECONDS`` (and at shutdown).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from gateway.background import run_in_background_thread
from gateway.services import credentials_mark_used

logger = logging.getLogger(__name__)


class LastUsedTracker:
    def __init__(self) -> None:
        self._pending: dict[int, datetime] = {}

    def touch(self, credential_id: int, when: datetime) -> None:
        self._pending[credential_id] = when

    async def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        try:
            await run_in_background_thread(credentials_mark_used, last_used=pending)
        except Exception:
            # Keep the times for the next flush, unless a newer use replaced them meanwhile.
            self._pending = {**pending, **self._pending}
            raise

    async def run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.flush()
            except Exception as exc:  # the database is away: the next flush retries
                logger.warning("last-used times not saved yet: %s", type(exc).__name__)
