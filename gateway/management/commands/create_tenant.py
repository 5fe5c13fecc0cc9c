"""``manage.py create_tenant NAME``: create a tenant (an organisation owning targets and credentials)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, service_errors
from gateway.services import tenant_create


class Command(GatewayCommand):
    """Create a tenant and print its id."""

    help = "Create a tenant."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("name", help="The tenant's unique name.")

    def handle(self, *args: Any, **options: Any) -> None:
        with service_errors():
            tenant = tenant_create(name=options["name"])
        self.emit(
            options,
            {"id": tenant.id, "name": tenant.name},
            f"Created tenant {tenant.name!r} (id {tenant.id}).",
        )
