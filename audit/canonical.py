"""The canonical bytes the audit seals are computed over, and the Merkle tree over them.

**Canonical form of an event** (version 1): the JSON object of every column of
:class:`~audit.models.AuditEvent` listed in :data:`EVENT_FIELDS` (every column that records what
happened; only the ``seal`` link is left out), serialised by orjson with sorted keys (nested objects
too) and no whitespace, UTF-8:

- keys are the column names (``tenant_id``, ``target_id``, ``credential_id`` for the foreign keys);
- ``id`` and the other integer columns are JSON integers, ``latency_ms`` a JSON number, a missing
  value ``null``; an integer of any size is written as its decimal digits (PostgreSQL's ``jsonb``
  gives back a large float, say ``1e300``, as an integer of 301 digits);
- ``event_id`` is the UUID in its lowercase hyphenated form;
- ``created_at`` is UTC with microseconds: ``2026-01-31T12:00:00.000000+00:00``;
- ``meter_notes``, ``response_values``, ``protections`` and ``details`` are their JSON values.

**Merkle tree** (RFC 6962, section 2.1): over a seal's events in ascending id order,
``leaf = SHA-256(0x00 || canonical event)``, ``node = SHA-256(0x01 || left || right)``, the left
subtree holding the largest power of two of leaves smaller than the count.

**Canonical form of a seal**: the orjson sorted-key JSON of the object :func:`seal_document` builds
(version, tenant id or null, sequence, first and last event id, event count, root and manifest
SHA-256 in hex, the previous seal's hash (64 zeros for a chain's first seal), ``created_at`` as above
and the signing key's id). The seal's hash (the next seal's ``previous_hash``) is the SHA-256 of these
bytes and the Ed25519 signature is over them. The manifest is the seal's events as 40-byte entries:
the id as an 8-byte big-endian integer, then its 32-byte leaf hash.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

CANONICAL_VERSION = 1
GENESIS_HASH = "0" * 64
MANIFEST_ENTRY_BYTES = 40
_INT_LOW, _INT_HIGH = -(2**63), 2**64 - 1  # what orjson writes itself

#: The columns of an event's canonical form (all of AuditEvent's but ``seal``; a test keeps it so).
EVENT_FIELDS = (
    "id",
    "event_id",
    "created_at",
    "request_id",
    "tenant_id",
    "target_id",
    "credential_id",
    "credential_name",
    "credential_prefix",
    "target_slug",
    "http_method",
    "path",
    "route",
    "jsonrpc_method",
    "tool",
    "jsonrpc_id",
    "session_id",
    "kind",
    "decision",
    "reason",
    "status_code",
    "upstream_status",
    "latency_ms",
    "request_bytes",
    "response_bytes",
    "client_ip",
    "meter_notes",
    "response_values",
    "protections",
    "details",
)


def canonical_time(moment: datetime) -> str:
    """``moment`` in UTC with microseconds, e.g. ``2026-01-31T12:00:00.000000+00:00``."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_event(row: Mapping[str, Any]) -> bytes:
    """The canonical bytes of an event given as a mapping of :data:`EVENT_FIELDS` (a ``values()`` row)."""
    document = {name: row[name] for name in EVENT_FIELDS}
    document["created_at"] = canonical_time(row["created_at"])
    event_id = row["event_id"]
    document["event_id"] = str(event_id if isinstance(event_id, uuid.UUID) else uuid.UUID(str(event_id)))
    try:
        return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # an integer beyond 64 bits (orjson's limit): written as its digits
        return orjson.dumps(_big_integers_as_digits(document), option=orjson.OPT_SORT_KEYS)


def _big_integers_as_digits(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and not _INT_LOW <= value <= _INT_HIGH:
        return orjson.Fragment(str(value).encode())
    if isinstance(value, dict):
        return {key: _big_integers_as_digits(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_big_integers_as_digits(item) for item in value]
    return value


def leaf_hash(canonical: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + canonical).digest()


def event_leaf(row: Mapping[str, Any]) -> bytes:
    return leaf_hash(canonical_event(row))


def merkle_root(leaves: list[bytes]) -> bytes:
    """The RFC 6962 tree head over ``leaves`` (already leaf hashes), computed level by level.

    Pairing neighbours and carrying an odd last node up unchanged gives the same root as RFC 6962's
    split at the largest power of two (a test compares both).
    """
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = leaves
    while len(level) > 1:
        paired = [
            hashlib.sha256(b"\x01" + level[index] + level[index + 1]).digest()
            for index in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def pack_manifest(entries: list[tuple[int, bytes]]) -> bytes:
    """``(event id, leaf hash)`` pairs as 40-byte manifest entries."""
    return b"".join(event_id.to_bytes(8, "big") + leaf for event_id, leaf in entries)


def unpack_manifest(manifest: bytes) -> Iterator[tuple[int, bytes]]:
    """The ``(event id, leaf hash)`` pairs of a manifest; ValueError when its length is not whole."""
    if len(manifest) % MANIFEST_ENTRY_BYTES:
        raise ValueError("manifest length is not a multiple of 40 bytes")
    for start in range(0, len(manifest), MANIFEST_ENTRY_BYTES):
        entry = manifest[start : start + MANIFEST_ENTRY_BYTES]
        yield int.from_bytes(entry[:8], "big"), entry[8:]


#: The fields of a seal's canonical form, as :func:`seal_document` takes them (and AuditSeal names them).
SEAL_FIELDS = (
    "tenant_id",
    "sequence",
    "first_event_id",
    "last_event_id",
    "event_count",
    "root",
    "manifest_sha256",
    "previous_hash",
    "created_at",
    "key_id",
)


def seal_document(
    *,
    tenant_id: int | None,
    sequence: int,
    first_event_id: int,
    last_event_id: int,
    event_count: int,
    root: str,
    manifest_sha256: str,
    previous_hash: str,
    created_at: datetime,
    key_id: str,
) -> bytes:
    """The canonical bytes of a seal: what is hashed into the chain and signed."""
    document = {
        "version": CANONICAL_VERSION,
        "tenant_id": tenant_id,
        "sequence": sequence,
        "first_event_id": first_event_id,
        "last_event_id": last_event_id,
        "event_count": event_count,
        "root": root,
        "manifest_sha256": manifest_sha256,
        "previous_hash": previous_hash,
        "created_at": canonical_time(created_at),
        "key_id": key_id,
    }
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def seal_bytes(seal: Any) -> bytes:
    """The canonical bytes of an :class:`~audit.models.AuditSeal` row as stored."""
    return seal_document(**{name: getattr(seal, name) for name in SEAL_FIELDS})
