"""The public keys ``verify_export`` trusts: given by the auditor (a key file, the ``audit-keys`` JSON
as a file or fetched from a URL), or, run on the gateway itself, its own configured keys.

A key's id is always computed from the key (audit/signing.py's ``key_id_for``), never taken from the
document that carries it, so a key file cannot claim another key's id.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

import httpx2
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

from audit.exports.verify import TrustedKeys
from audit.signing import key_id_for, signing_keys

MAX_KEYS_BYTES = 64 * 1024
KEYS_URL_TIMEOUT_SECONDS = 10.0


class KeysUnreadable(ValueError):
    """The keys given cannot be read."""


def keys_from_file(path: Path) -> TrustedKeys:
    """A raw Ed25519 public key (base64url), a PEM public key, or an audit-keys JSON document."""
    try:
        data = path.read_bytes()[: MAX_KEYS_BYTES + 1]
    except OSError as error:
        raise KeysUnreadable(f"{path}: {error.strerror}") from None
    if len(data) > MAX_KEYS_BYTES:
        raise KeysUnreadable(f"{path}: larger than {MAX_KEYS_BYTES} bytes")
    text = data.strip()
    if text.startswith(b"{"):
        return keys_from_json(text)
    if text.startswith(b"-----BEGIN"):
        try:
            key = load_pem_public_key(text)
        except ValueError:
            raise KeysUnreadable(f"{path}: not a PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeysUnreadable(f"{path}: not an Ed25519 key")
        return _trusted([key.public_bytes(Encoding.Raw, PublicFormat.Raw)])
    return _trusted([_raw_key(text.decode(errors="replace"))])


def keys_from_json(data: bytes) -> TrustedKeys:
    """The keys of an ``/.well-known/audit-keys`` document."""
    try:
        document = orjson.loads(data)
        raws = [_raw_key(str(entry["public_key"])) for entry in document["keys"]]
    except (orjson.JSONDecodeError, KeyError, TypeError) as error:
        raise KeysUnreadable(f"not an audit-keys document ({type(error).__name__})") from None
    return _trusted(raws)


def keys_from_url(url: str) -> TrustedKeys:
    """The audit-keys document at ``url`` (e.g. https://gateway.example/.well-known/audit-keys)."""
    if not url.startswith(("https://", "http://")):
        raise KeysUnreadable("--keys-url must be an http(s) URL")
    try:
        with httpx2.Client(timeout=KEYS_URL_TIMEOUT_SECONDS, follow_redirects=False) as client:
            with client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise KeysUnreadable(f"{url} answered {response.status_code}")
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_KEYS_BYTES:
                        raise KeysUnreadable(f"{url}: larger than {MAX_KEYS_BYTES} bytes")
    except httpx2.HTTPError as error:
        raise KeysUnreadable(f"{url} cannot be fetched ({type(error).__name__})") from None
    return keys_from_json(body)


def configured_keys() -> TrustedKeys:
    """This gateway's own audit keys (GATEWAY_AUDIT_SIGNING_KEYS), public halves only."""
    return _trusted([key.public_raw for key in signing_keys()])


def _raw_key(text: str) -> bytes:
    value = text.strip()
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise KeysUnreadable("a public key is not base64url") from None
    if len(raw) != 32:
        raise KeysUnreadable("a public key is not 32 bytes")
    return raw


def _trusted(raws: list[bytes]) -> TrustedKeys:
    return {key_id_for(raw): Ed25519PublicKey.from_public_bytes(raw) for raw in raws}
