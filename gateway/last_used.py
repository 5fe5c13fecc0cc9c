"""``Credential.last_used_at`` kept current without a database write per request.

The proxy notes each use in memory; a background task writes the latest time per credential every
``LAST_USED_FLUSH_SECONDS`` (and at shutdown).
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from gateway.background import run_in_background_thread
from gateway.services import credentials_mark_used


class LastUsedTracker:
    def __init__(self) -> None:
        self._pending: dict[int, datetime] = {}

    def touch(self, credential_id: int, when: datetime) -> None:
        self._pending[credential_id] = when

    async def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        await run_in_background_thread(credentials_mark_used, last_used=pending)

    async def run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.flush()
            except Exception:  # the database is away: the next flush carries newer times anyway
                pass
