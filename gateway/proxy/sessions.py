"""MCP sessions bound to the credential that opened them, with no shared session store.

The agent never sees the upstream's ``Mcp-Session-Id``: it gets ``<upstream id, base64url>.<tag>``
where the tag is an HMAC over (credential, target, upstream id) keyed from ``SECRET_KEY``. Any
gateway process can check a presented id on its own; an id presented by another credential (or
for another target) fails the check. A session id is therefore never authentication, as the MCP
security best practices require: the credential is, and the session must belong to it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from functools import cache

from django.conf import settings

_TAG_BYTES = 16


@cache
def _key() -> bytes:
    return hashlib.sha256(b"mcp-gateway session binding\x00" + settings.SECRET_KEY.encode()).digest()


def _tag(credential_id: int, target_id: int, upstream_id: str) -> str:
    message = f"{credential_id}:{target_id}:{upstream_id}".encode()
    digest = hmac.new(_key(), message, hashlib.sha256).digest()[:_TAG_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def bind_session(*, credential_id: int, target_id: int, upstream_id: str) -> str:
    """The session id the agent sees for ``upstream_id``."""
    encoded = base64.urlsafe_b64encode(upstream_id.encode()).rstrip(b"=").decode()
    return f"{encoded}.{_tag(credential_id, target_id, upstream_id)}"


class SessionMalformed(ValueError):
    """The presented id was not issued by this gateway."""


class SessionNotOwned(ValueError):
    """The presented id was issued to another credential or target."""


def unbind_session(*, credential_id: int, target_id: int, agent_id: str) -> str:
    """The upstream session id behind ``agent_id``, if it belongs to this credential and target."""
    encoded, _, tag = agent_id.partition(".")
    if not encoded or not tag:
        raise SessionMalformed(agent_id)
    try:
        padded = encoded + "=" * (-len(encoded) % 4)
        upstream_id = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise SessionMalformed(agent_id) from None
    if not hmac.compare_digest(tag.encode(), _tag(credential_id, target_id, upstream_id).encode()):
        raise SessionNotOwned(agent_id)
    return upstream_id
