"""``manage.py list_siem_sinks``: every SIEM sink with where its delivery stands (never a secret)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from audit.siem.selectors import siem_sink_list
from gateway.management.commands._cli import GatewayCommand, tenant_by_name


class Command(GatewayCommand):
    """List the SIEM sinks: kind, settings, cursor, backlog, failures and the last error."""

    help = "List the SIEM sinks and their delivery state (cursor, backlog, last error)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--tenant", metavar="NAME", help="Only this tenant's sinks.")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_by_name(options["tenant"]) if options["tenant"] else None
        sinks = siem_sink_list(tenant_id=tenant.pk if tenant else None)
        lines = []
        for sink in sinks:
            state = "on" if sink["enabled"] else "off"
            lines.append(
                f"{sink['id']} {sink['tenant']}/{sink['name']} {sink['kind']} ({state}): "
                f"cursor {sink['cursor']}, backlog {sink['backlog']}, delivered {sink['delivered']}, "
                f"failures {sink['failures']}"
                + (f", last error: {sink['last_error']}" if sink["last_error"] else "")
            )
        self.emit(options, {"sinks": sinks}, "\n".join(lines) or "No SIEM sink.")
