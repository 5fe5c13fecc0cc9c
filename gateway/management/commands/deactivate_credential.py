"""``manage.py deactivate_credential ID``: retire a credential for good, keeping it for the audit trail.

This is how a credential is deleted: it is revoked, hidden from the admin's default list and its
name is free again, while every audit event still refers to it.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, credential_by_id
from gateway.services import credential_deactivate


class Command(GatewayCommand):
    """Deactivate a credential by id (idempotent)."""

    help = "Deactivate a credential: refused like a revoked one, hidden, kept for the audit trail."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("id", help="Id of the credential.")

    def handle(self, *args: Any, **options: Any) -> None:
        credential = credential_by_id(options["id"])
        already = credential.deactivated_at is not None
        credential_deactivate(credential=credential)
        when = f"{credential.deactivated_at:%Y-%m-%d %H:%M:%S %Z}"
        text = (
            f"Credential {credential.id} {credential.name!r} was already deactivated at {when}."
            if already
            else f"Deactivated credential {credential.id} {credential.name!r} at {when}; "
            "its audit events are kept."
        )
        data = {
            "id": credential.id,
            "name": credential.name,
            "status": credential.status,
            "deactivated_at": credential.deactivated_at,
            "already_deactivated": already,
        }
        self.emit(options, data, text)
