"""``manage.py deactivate_credential ID``: retire a credential for good, keeping it for the audit trail.

This is how a credential is deleted: it is revoked, hidden from the admin's default list and its
name is free again, while every audit event still refers to it.
"""

from __future__ import annotations

from gateway.management.commands._cli import CredentialTransitionCommand
from gateway.models import Credential
from gateway.services import credential_deactivate


class Command(CredentialTransitionCommand):
    """Deactivate a credential by id (idempotent)."""

    help = "Deactivate a credential: refused like a revoked one, hidden, kept for the audit trail."
    state, timestamp_field = "deactivated", "deactivated_at"
    done_note = " Its audit events are kept."

    def transition(self, credential: Credential) -> None:
        credential_deactivate(credential=credential)
