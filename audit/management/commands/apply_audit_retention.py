"""``manage.py apply_audit_retention``: delete audit events past each tenant's retention now (what
the hourly beat task does), in whole sealed ranges; the seals stay and ``verify_audit`` still passes."""

from __future__ import annotations

from typing import Any

from audit.retention import audit_retention_run
from gateway.management.commands._cli import GatewayCommand, service_errors


class Command(GatewayCommand):
    """Apply every tenant's audit retention and print what was deleted."""

    help = "Delete audit events older than each tenant's retention (whole sealed ranges; seals kept)."

    def handle(self, *args: Any, **options: Any) -> None:
        with service_errors():
            report = audit_retention_run()
        lines = [
            f"{tenant.tenant}: {tenant.events_deleted} event(s) of {tenant.seals_pruned} seal(s) deleted"
            + (f"; {tenant.refused}" if tenant.refused else "")
            for tenant in report.tenants
        ]
        if report.failed:
            lines.append(f"{report.failed} tenant(s) failed (see the log).")
        self.emit(options, report.as_dict(), "\n".join(lines) or "No tenant has a retention.")
