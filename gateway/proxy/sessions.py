"""MCP sessions bound to the credential that opened them, with no shared session store.

The agent never sees the upstream's ``Mcp-Session-Id``, in any encoding: it gets
``s1.<base64url(nonce | AES-256-GCM ciphertext and tag)>``, where the plaintext holds the
credential id, the target id and the upstream id, and the key is derived from ``SECRET_KEY``
(``SECRET_KEY_FALLBACKS`` still open ids issued before a key rotation). Any gateway process can
open a presented id on its own. Two outcomes are told apart:

- an id that does not decrypt (never issued by this gateway, tampered with, malformed, not ASCII)
  raises :class:`SessionMalformed`;
- an id that decrypts but names another credential or target raises :class:`SessionNotOwned`.

A session id is therefore never authentication, as the MCP security best practices require: the
credential is, and the session must belong to it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import struct
from functools import cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

_VERSION = "s1."
_NONCE_BYTES = 12
_TAG_BYTES = 16
_OWNER = struct.Struct(">QQ")  # credential id, target id
_AAD = b"mcp-gateway session id v1"
# The smallest id that can hold a nonce, an owner and a tag; anything shorter was never issued.
_MIN_RAW_BYTES = _NONCE_BYTES + _OWNER.size + _TAG_BYTES
# Upstream ids are short in practice; a bound keeps a hostile header from costing a large decryption.
MAX_AGENT_ID_CHARS = 4096


@cache
def _ciphers(secret_keys: tuple[str, ...]) -> tuple[AESGCM, ...]:
    return tuple(
        AESGCM(hashlib.sha256(b"mcp-gateway session encryption\x00" + key.encode()).digest())
        for key in secret_keys
    )


def _keys() -> tuple[AESGCM, ...]:
    """The current key first (it encrypts), then the fallbacks (they only decrypt)."""
    fallbacks = tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ()) or ())
    return _ciphers((settings.SECRET_KEY, *fallbacks))


def bind_session(*, credential_id: int, target_id: int, upstream_id: str) -> str:
    """The session id the agent sees for ``upstream_id``: it reveals nothing of it."""
    nonce = os.urandom(_NONCE_BYTES)
    plaintext = _OWNER.pack(credential_id, target_id) + upstream_id.encode()
    sealed = nonce + _keys()[0].encrypt(nonce, plaintext, _AAD)
    return _VERSION + base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")


class SessionMalformed(ValueError):
    """The presented id was not issued by this gateway (or cannot be read at all)."""


class SessionNotOwned(ValueError):
    """The presented id was issued to another credential or target."""


def unbind_session(*, credential_id: int, target_id: int, agent_id: str) -> str:
    """The upstream session id behind ``agent_id``, if it belongs to this credential and target."""
    plaintext = _open(agent_id)
    owner, upstream = plaintext[: _OWNER.size], plaintext[_OWNER.size :]
    if owner != _OWNER.pack(credential_id, target_id):
        raise SessionNotOwned("session issued to another credential or target")
    try:
        return upstream.decode()
    except UnicodeDecodeError:
        raise SessionMalformed("session id does not hold a text upstream id") from None


def _open(agent_id: str) -> bytes:
    # The exception messages never repeat the presented id: it is the agent's input, and a session id.
    if not agent_id.isascii() or not agent_id.startswith(_VERSION) or len(agent_id) > MAX_AGENT_ID_CHARS:
        raise SessionMalformed("not a session id issued by this gateway")
    encoded = agent_id[len(_VERSION) :]
    try:
        sealed = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        raise SessionMalformed("session id is not base64url") from None
    if len(sealed) < _MIN_RAW_BYTES or base64.urlsafe_b64encode(sealed).rstrip(b"=").decode() != encoded:
        raise SessionMalformed("not a session id issued by this gateway")
    nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
    for cipher in _keys():
        try:
            return cipher.decrypt(nonce, ciphertext, _AAD)
        except InvalidTag:
            continue
    raise SessionMalformed("session id does not decrypt with any key")
