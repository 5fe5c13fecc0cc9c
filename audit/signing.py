"""The Ed25519 keys that sign audit seals.

``GATEWAY_AUDIT_SIGNING_KEYS`` lists private keys, each the 32-byte Ed25519 seed in base64url
(padding optional; make one with ``python -c "import base64, os;
print(base64.urlsafe_b64encode(os.urandom(32)).decode())"``). The first signs new seals; every key
listed verifies, so a key is rotated by putting a new one first and keeping the old one after it for
as long as seals it signed must verify. A key's id is the first 16 hex digits of the SHA-256 of its
raw 32-byte public key; each seal names the id of the key that signed it. The public halves are
published at ``/.well-known/audit-keys`` and in the admin.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from functools import cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

ALGORITHM = "Ed25519"


class NoSigningKey(ImproperlyConfigured):
    """No GATEWAY_AUDIT_SIGNING_KEYS: seals cannot be made."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One configured key: its id, its public half (raw bytes) and the private key (never shown)."""

    key_id: str
    public_raw: bytes
    private: Ed25519PrivateKey = field(repr=False)

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id!r})"


def key_id_for(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_signing_key(text: str) -> SigningKey:
    """A :class:`SigningKey` from its base64url seed; ValueError when it is not 32 bytes of base64url."""
    value = text.strip()
    try:
        seed = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (ValueError, TypeError):
        raise ValueError("not base64url") from None
    if len(seed) != 32:
        raise ValueError("not 32 bytes")
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public_raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return SigningKey(key_id=key_id_for(public_raw), public_raw=public_raw, private=private)


@cache
def signing_keys() -> tuple[SigningKey, ...]:
    """The configured keys, the signing one first (read once; :func:`reset_signing_keys` forgets)."""
    keys: list[SigningKey] = []
    for position, text in enumerate(getattr(settings, "GATEWAY_AUDIT_SIGNING_KEYS", []), start=1):
        if not text.strip():
            continue
        try:
            keys.append(parse_signing_key(text))
        except ValueError as error:
            raise ImproperlyConfigured(
                f"GATEWAY_AUDIT_SIGNING_KEYS entry #{position} is not an Ed25519 key ({error})."
            ) from None
    return tuple(keys)


def reset_signing_keys() -> None:
    """Forget the cached keys (tests that change GATEWAY_AUDIT_SIGNING_KEYS call this)."""
    signing_keys.cache_clear()


def current_signing_key() -> SigningKey:
    """The key that signs new seals (the first configured); NoSigningKey when none is set."""
    keys = signing_keys()
    if not keys:
        raise NoSigningKey("GATEWAY_AUDIT_SIGNING_KEYS is not set: audit events cannot be sealed.")
    return keys[0]


def sign(key: SigningKey, data: bytes) -> str:
    """The hex Ed25519 signature of ``data`` by ``key``."""
    return key.private.sign(data).hex()


def signature_problem(key_id: str, data: bytes, signature: str) -> str | None:
    """None when ``signature`` (hex) is the key ``key_id``'s over ``data``, else what is wrong."""
    key = next((k for k in signing_keys() if k.key_id == key_id), None)
    if key is None:
        return f"signed by key {key_id!r}, which is not in GATEWAY_AUDIT_SIGNING_KEYS"
    try:
        Ed25519PublicKey.from_public_bytes(key.public_raw).verify(bytes.fromhex(signature), data)
    except (InvalidSignature, ValueError):
        return f"signature does not verify with key {key_id}"
    return None


def public_keys() -> list[dict[str, object]]:
    """What ``/.well-known/audit-keys`` and the admin show: each key's id and raw public key."""
    return [
        {"key_id": key.key_id, "public_key": b64url(key.public_raw), "signing": position == 0}
        for position, key in enumerate(signing_keys())
    ]
