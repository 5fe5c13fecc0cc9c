"""``manage.py seal_audit``: seal every tenant's new audit events now (what the beat task does)."""

from __future__ import annotations

from typing import Any

from audit.services import audit_seal_run
from gateway.management.commands._cli import GatewayCommand, service_errors


class Command(GatewayCommand):
    """Seal the audit events not sealed yet and print how many."""

    help = "Seal the audit events not sealed yet (Celery beat, or the gateway itself, does it every minute)."

    def handle(self, *args: Any, **options: Any) -> None:
        with service_errors():
            report = audit_seal_run()
        self.emit(options, report.as_dict(), f"Sealed {report.events} event(s) in {report.seals} seal(s).")
