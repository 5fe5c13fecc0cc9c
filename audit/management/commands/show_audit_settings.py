"""``manage.py show_audit_settings --tenant T [--json]``: how long a tenant's audit events are kept
(``set_audit_retention`` changes it)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from audit.models import AuditSettings
from gateway.management.commands._cli import GatewayCommand, tenant_by_name


class Command(GatewayCommand):
    """Show a tenant's audit settings; a tenant never configured keeps its events forever."""

    help = "Show how long a tenant's audit events are kept (set_audit_retention changes it)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--tenant", required=True, metavar="NAME")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_by_name(options["tenant"])
        days = AuditSettings.objects.filter(tenant=tenant).values_list("retention_days", flat=True).first()
        text = f"Tenant {tenant.name!r} keeps its audit events " + (f"{days} days." if days else "forever.")
        self.emit(options, {"tenant": tenant.name, "retention_days": days}, text)
