"""``manage.py create_tenant NAME``: create a tenant (an organisation owning targets and credentials)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, service_errors
from gateway.management.commands._oauth_options import add_oauth_arguments, tenant_data, tenant_text
from gateway.services import tenant_create


class Command(GatewayCommand):
    """Create a tenant and print its id (and which self-registered OAuth clients it accepts)."""

    help = "Create a tenant."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("name", help="The tenant's unique name.")
        add_oauth_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        with service_errors():
            tenant = tenant_create(
                name=options["name"],
                oauth_allow_dcr=bool(options["allow_dcr"]),
                oauth_allow_cimd=bool(options["allow_cimd"]),
                oauth_scopes=options["oauth_scope"] or (),
            )
        self.emit(
            options,
            tenant_data(tenant),
            f"Created tenant {tenant.name!r} (id {tenant.id}). {tenant_text(tenant)}",
        )
