"""``manage.py show_tenant NAME [--json]``: a tenant and what it owns (targets, credentials, meters,
protections, users)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, tenant_by_name
from gateway.management.commands._describe import credential_line, tenant_as_json, user_as_json, user_line
from gateway.selectors import credential_list, target_list, user_list
from metering.selectors import meter_list
from policies.selectors import filter_list, redaction_policy_list


class Command(GatewayCommand):
    """Show one tenant and what it owns."""

    help = "Show a tenant: its targets, credentials, users and how many meters and protections it has."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("name", help="The tenant's name.")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_by_name(options["name"])
        targets = list(target_list(tenant=tenant))
        credentials = list(credential_list(tenant=tenant))
        users = list(user_list(tenant=tenant))
        counts = {
            "meters": meter_list(tenant=tenant).count(),
            "filters": filter_list(tenant=tenant).count(),
            "redaction_policies": redaction_policy_list(tenant=tenant).count(),
        }
        data = {
            **tenant_as_json(tenant),
            "targets": [target.slug for target in targets],
            "credentials": [{"id": c.id, "name": c.name, "status": c.status} for c in credentials],
            "users": [user_as_json(user) for user in users],
            **counts,
        }
        lines = [
            f"Tenant {tenant.name!r} (id {tenant.id}), created {tenant.created_at:%Y-%m-%d %H:%M:%S %Z}.",
            f"Targets: {', '.join(t.slug for t in targets) or 'none'}",
            f"Credentials ({len(credentials)}, deactivated ones not shown):",
            *(f"  {credential_line(c)}" for c in credentials),
            f"Users ({len(users)}):",
            *(f"  {user_line(user)}" for user in users),
            f"{counts['meters']} meter(s), {counts['filters']} filter(s), "
            f"{counts['redaction_policies']} redaction policy(ies).",
        ]
        self.emit(options, data, "\n".join(lines))
