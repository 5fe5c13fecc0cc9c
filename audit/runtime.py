"""The audit sealer inside a gateway process, for the embedded default (no Celery broker, so no beat).

With a broker, Celery beat runs ``audit.seal`` every minute instead (audit/tasks.py).
"""

from __future__ import annotations

from gateway.background import run_every

SEAL_INTERVAL_SECONDS = 60.0


async def keep_audit_sealed(interval: float) -> None:
    """Seal the audit trail every ``interval`` seconds, off the event loop.

    A failed run (database away, no signing key) is logged and the next run seals what it did not.
    Cancelling waits for a run already in flight to finish, then stops.
    """
    from audit.services import audit_seal_run

    await run_every(interval, audit_seal_run, "audit sealing")
