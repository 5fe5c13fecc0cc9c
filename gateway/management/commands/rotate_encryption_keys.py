"""``manage.py rotate_encryption_keys``: re-encrypt every upstream secret with the newest key.

Put a new key first in ``GATEWAY_ENCRYPTION_KEYS``, run this, then drop the old key.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from gateway.crypto import SecretDecryptionError
from gateway.management.commands._cli import GatewayCommand, service_errors
from gateway.services import encryption_keys_rotate


class Command(GatewayCommand):
    """Re-encrypt stored upstream secrets with the first key of GATEWAY_ENCRYPTION_KEYS."""

    help = "Re-encrypt every stored upstream secret with the first key of GATEWAY_ENCRYPTION_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with service_errors():
                rotated = encryption_keys_rotate()
        except SecretDecryptionError:
            raise CommandError(
                "A stored upstream secret cannot be decrypted with any key in GATEWAY_ENCRYPTION_KEYS; "
                "nothing was changed. Keep the old key in the list, after the new one, until this has run."
            ) from None
        self.emit(
            options,
            {"rotated": rotated},
            f"Re-encrypted {rotated} stored secret(s) (upstream, JWT HS256) with the first key of "
            "GATEWAY_ENCRYPTION_KEYS.",
        )
