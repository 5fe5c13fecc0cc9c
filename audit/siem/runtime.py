"""SIEM delivery inside a gateway process, for the embedded default (no Celery broker, so no beat).

It runs on a thread of its own, never the shared background thread that writes the audit trail: a
sink's network timeouts then delay nothing but the other sinks. With a broker, Celery beat runs
``audit.siem_deliver`` instead (audit/tasks.py).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from django.db import connections

from gateway.background import run_every

_siem_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-siem")


async def keep_siem_delivered(interval: float) -> None:
    """Deliver to the SIEM sinks every ``interval`` seconds, off the event loop, until cancelled.

    A failed run is logged and the next one carries on. Cancelling waits for a run in flight to
    finish (bounded by the sinks' timeouts) and closes the thread's database connection.
    """
    from audit.siem.services import siem_deliver_run

    try:
        await run_every(interval, siem_deliver_run, "SIEM delivery", executor=_siem_thread)
    finally:
        await asyncio.get_running_loop().run_in_executor(_siem_thread, connections.close_all)
