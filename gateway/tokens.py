"""Agent tokens: ``mgw_<prefix>_<secret>`` (and the REST API's user tokens, ``mga_<prefix>_<secret>``).

Only the SHA-256 digest of the whole token is stored; the short random prefix finds the row, and
the digest is compared in constant time. A token has 256 bits of entropy, so a fast hash is safe.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass

TOKEN_SCHEME = "mgw"  # noqa: S105 - a public prefix, not a secret
API_TOKEN_SCHEME = "mga"  # noqa: S105 - the REST API's user tokens: never mistaken for an agent's
PREFIX_LENGTH = 10
SECRET_BYTES = 32
SECRET_LENGTH = 43  # len(secrets.token_urlsafe(SECRET_BYTES)): 32 bytes in unpadded base64url
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
_PREFIX_CHARS = frozenset(_PREFIX_ALPHABET)
_SECRET_CHARS = frozenset(string.ascii_letters + string.digits + "-_")


@dataclass(frozen=True, slots=True)
class NewToken:
    """A freshly minted token: ``token`` is shown once and never stored."""

    token: str
    prefix: str
    secret_hash: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def generate_token(scheme: str = TOKEN_SCHEME) -> NewToken:
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    token = f"{scheme}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    return NewToken(token=token, prefix=prefix, secret_hash=hash_token(token))


def token_prefix(token: str, scheme: str = TOKEN_SCHEME) -> str | None:
    """The lookup prefix of a well-formed token, or None.

    Only the exact shape :func:`generate_token` mints is well-formed, so anything else is refused
    without a lookup.
    """
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != scheme:
        return None
    _, prefix, secret = parts
    if len(prefix) != PREFIX_LENGTH or not _PREFIX_CHARS.issuperset(prefix):
        return None
    if len(secret) != SECRET_LENGTH or not _SECRET_CHARS.issuperset(secret):
        return None
    return prefix


def token_matches(token: str, secret_hash: str) -> bool:
    """Constant-time check of a presented token against a stored digest."""
    return hmac.compare_digest(hash_token(token).encode(), secret_hash.encode())
