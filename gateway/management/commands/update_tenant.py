"""``manage.py update_tenant NAME``: change a tenant's OAuth settings (options not given are kept)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, service_errors, tenant_by_name
from gateway.management.commands._oauth_options import add_oauth_arguments, tenant_data, tenant_text
from gateway.services import tenant_set_oauth


class Command(GatewayCommand):
    """Change which self-registered OAuth clients a tenant accepts and the scopes they may get."""

    help = "Change a tenant's OAuth settings (--allow-dcr / --no-allow-dcr, --allow-cimd, --oauth-scope)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("name", help="The tenant's name.")
        add_oauth_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_by_name(options["name"])
        with service_errors():
            tenant_set_oauth(
                tenant=tenant,
                allow_dcr=options["allow_dcr"],
                allow_cimd=options["allow_cimd"],
                scopes=options["oauth_scope"],
            )
        self.emit(options, tenant_data(tenant), f"Updated tenant {tenant.name!r}. {tenant_text(tenant)}")
