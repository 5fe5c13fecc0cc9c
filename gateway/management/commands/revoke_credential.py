"""``manage.py revoke_credential ID``: revoke a credential; every gateway process refuses it at once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, credential_by_id
from gateway.services import credential_revoke


class Command(GatewayCommand):
    """Revoke a credential by id (idempotent)."""

    help = "Revoke a credential."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("id", help="Id of the credential.")

    def handle(self, *args: Any, **options: Any) -> None:
        credential = credential_by_id(options["id"])
        already_revoked = credential.revoked_at is not None
        credential_revoke(credential=credential)
        when = f"{credential.revoked_at:%Y-%m-%d %H:%M:%S %Z}"
        text = (
            f"Credential {credential.id} {credential.name!r} was already revoked at {when}."
            if already_revoked
            else f"Revoked credential {credential.id} {credential.name!r} at {when}."
        )
        data = {
            "id": credential.id,
            "name": credential.name,
            "status": credential.status,
            "revoked_at": credential.revoked_at,
            "already_revoked": already_revoked,
        }
        self.emit(options, data, text)
