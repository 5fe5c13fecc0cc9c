"""``manage.py revoke_credential ID``: revoke a credential; every gateway process refuses it at once."""

from __future__ import annotations

from gateway.management.commands._cli import CredentialTransitionCommand
from gateway.models import Credential
from gateway.services import credential_revoke


class Command(CredentialTransitionCommand):
    """Revoke a credential by id (idempotent)."""

    help = "Revoke a credential."
    state, timestamp_field = "revoked", "revoked_at"

    def transition(self, credential: Credential) -> None:
        credential_revoke(credential=credential)
