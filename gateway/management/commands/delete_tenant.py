"""``manage.py delete_tenant NAME --yes [--json]``: delete a tenant and everything it owns.

Without ``--yes`` it deletes nothing and says what would go. A tenant whose credentials audit events
refer to cannot be deleted (the trail must keep pointing at them): deactivate them instead.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from gateway.management.commands._cli import GatewayCommand, service_errors, tenant_by_name
from gateway.services import tenant_delete


class Command(GatewayCommand):
    """Delete a tenant (and its targets, credentials, rules, meters and protections)."""

    help = "Delete a tenant and everything it owns; --yes is required."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("name", help="The tenant's name.")
        parser.add_argument("--yes", action="store_true", help="Really delete it.")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_by_name(options["name"])
        owned = f"{tenant.targets.count()} target(s) and {tenant.credentials.count()} credential(s)"
        if not options["yes"]:
            raise CommandError(
                f"Deleting tenant {tenant.name!r} also deletes its {owned}, with their rules, meters and "
                "protections: run again with --yes to delete it."
            )
        tenant_id = tenant.id
        with service_errors():
            tenant_delete(tenant=tenant)
        self.emit(
            options,
            {"id": tenant_id, "name": options["name"], "deleted": True},
            f"Deleted tenant {options['name']!r} and its {owned}.",
        )
