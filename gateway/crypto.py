"""Encryption at rest of upstream secrets with MultiFernet.

``GATEWAY_ENCRYPTION_KEYS`` lists Fernet keys: the first encrypts, all of them decrypt, so a key is
rotated by putting a new key first, running ``manage.py rotate_encryption_keys`` and then dropping
the old key.
"""

from __future__ import annotations

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.core.exceptions import ImproperlyConfigured

from gateway.conf import gateway_settings


class SecretDecryptionError(Exception):
    """A stored secret could not be decrypted with any configured key."""


@cache
def _fernet() -> MultiFernet:
    keys = gateway_settings().encryption_keys
    if not keys:
        raise ImproperlyConfigured(
            "GATEWAY_ENCRYPTION_KEYS is not set: upstream secrets cannot be encrypted."
        )
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError:
        raise ImproperlyConfigured(
            "GATEWAY_ENCRYPTION_KEYS holds a value that is not a Fernet key "
            "(32 url-safe base64-encoded bytes)."
        ) from None


def encrypt_secret(plaintext: str) -> str:
    """Encrypt ``plaintext`` with the newest key."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt_secret(token: str) -> str:
    """Decrypt a stored secret with whichever configured key made it."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretDecryptionError(
            "stored secret cannot be decrypted with GATEWAY_ENCRYPTION_KEYS"
        ) from None


def rotate_secret(token: str) -> str:
    """Re-encrypt a stored secret with the newest key."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretDecryptionError(
            "stored secret cannot be decrypted with GATEWAY_ENCRYPTION_KEYS"
        ) from None


def reset_crypto_cache() -> None:
    """Forget the cached key set (tests that change the keys call this)."""
    _fernet.cache_clear()
