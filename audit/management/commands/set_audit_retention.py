"""``manage.py set_audit_retention --tenant T (--days N | --forever)``: how long a tenant's audit
events are kept. Retention deletes older events in whole sealed ranges and keeps the seals."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from audit.retention import audit_retention_set
from gateway.management.commands._cli import GatewayCommand, service_errors, tenant_by_name


class Command(GatewayCommand):
    """Set a tenant's audit retention in days, or keep its events forever."""

    help = "Keep a tenant's audit events N days (--days N) or forever (--forever, the default)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--tenant", required=True, metavar="NAME")
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--days", type=int, help="Delete events older than this many days (1 or more).")
        group.add_argument("--forever", action="store_true", help="Never delete the tenant's events.")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_by_name(options["tenant"])
        with service_errors():
            settings = audit_retention_set(
                tenant=tenant, days=None if options["forever"] else options["days"]
            )
        days = settings.retention_days
        text = f"Tenant {tenant.name!r} keeps its audit events " + (f"{days} days." if days else "forever.")
        self.emit(options, {"tenant": tenant.name, "retention_days": days}, text)
