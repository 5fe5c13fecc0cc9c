"""``manage.py rotate_credential ID``: replace a credential's token.

The old token stops working at once; rules and targets stay. The new token is printed once.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from gateway.management.commands._cli import GatewayCommand, credential_by_id, service_errors
from gateway.services import credential_rotate


class Command(GatewayCommand):
    """Rotate a credential's token and print the new one (once)."""

    help = "Rotate a credential's token; prints the new token once."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("id", help="Id of the credential.")

    def handle(self, *args: Any, **options: Any) -> None:
        credential = credential_by_id(options["id"])
        if credential.revoked_at is not None:
            raise CommandError(
                f"Credential {credential.id} is revoked: a new token for it would be refused. "
                "Create a new credential instead."
            )
        with service_errors():  # a JWT credential has no token to rotate
            issued = credential_rotate(credential=credential)
        self.emit(
            options,
            {"id": credential.id, "token": issued.token},
            f"Rotated the token of credential {credential.id} {credential.name!r}; the old token no longer "
            f"works.\nNew token (shown once, it cannot be recovered): {issued.token}",
        )
