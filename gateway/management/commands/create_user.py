"""``manage.py create_user NAME --tenant T --role admin|reviewer [--password-file F] [--json]``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, read_secret, service_errors, tenant_by_name
from gateway.models import TenantMembership
from gateway.services import user_create


class Command(GatewayCommand):
    """Create a staff user confined to one tenant as its admin or reviewer (gateway/roles.py). Without
    --password-file a password is generated and printed once."""

    help = "Create a tenant admin or reviewer who can sign in to the admin, the dashboard and the API."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("name", help="The user name to sign in with.")
        parser.add_argument("--tenant", required=True, help="The tenant's name.")
        parser.add_argument("--role", required=True, choices=TenantMembership.Role.values)
        parser.add_argument(
            "--password-file",
            help="Read the password from this file ('-' for standard input) instead of generating one.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_by_name(options["tenant"])
        password = (
            read_secret(options["password_file"], "--password-file") if options["password_file"] else ""
        )
        with service_errors():
            created = user_create(
                username=options["name"], tenant=tenant, role=options["role"], password=password
            )
        data: dict[str, Any] = {
            "id": created.user.pk,
            "name": created.user.username,
            "tenant": tenant.name,
            "role": created.membership.role,
        }
        role = created.membership.get_role_display().lower()
        text = f"Created {role} {created.user.username!r} of {tenant.name!r}."
        if created.password:
            data["password"] = created.password
            text += f"\nPassword (shown once): {created.password}"
        self.emit(options, data, text)
