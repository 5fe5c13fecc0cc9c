"""The signed manifest written beside every export (``<file>.manifest.json``).

Layout (version 1), a JSON object:

- ``format``: ``"mcp-gateway-audit-export-manifest"``, ``version``: 1;
- ``statement``, what the gateway signs: ``file`` (name, format, ``sha256`` and ``bytes`` of the
  export file, ``events`` in it), ``tenant`` (id, name), ``period`` (``since`` included, ``until``
  excluded, canonical UTC times), ``exported_at``, ``seals`` (each covered seal as stored: tenant id,
  sequence, first and last event id, event count, Merkle root, manifest SHA-256, previous hash,
  created_at, key id, signature, seal hash), ``unsealed`` (``events``: how many exported events are not
  sealed yet, ``sha256``: of their ``(id, leaf)`` list packed like a seal's, 40 bytes an entry; the
  manifest's signature is then their only proof) and ``missing`` (``[sequence, id]`` of events a
  covered seal lists that were no longer in the database when exported);
- ``signature``: ``algorithm`` Ed25519, ``key_id`` and ``value`` (hex) over the statement's canonical
  JSON (orjson, sorted keys, no whitespace), by the gateway's current audit signing key;
- ``evidence``: ``seals``, for event exports, per covered seal its ``sequence``, ``leaves`` (its stored
  list of ``(id, leaf)`` entries, base64; its SHA-256 is signed in the seal) and ``outside_period``
  (the canonical form of each of its events that is not an event of the export: it lies outside the
  period); and ``unsealed``, the ``[id, leaf hex]`` list the statement's digest covers. Evidence needs no
  signature of its own: the signatures prove the lists, the lists prove the events. It is written as it
  is read, so a manifest is made in constant memory too.

**Covered seals**: the seals of the exported events, every seal of the tenant made during the period,
and the first one made after it. A seal that straddles the period's start or end is covered whole: its
events outside the period are shown in ``outside_period``, so the verifier sees that every event of
the seal is either in the file or outside the period, and an event of the period removed from the file
(or from the database before the export) is found. A PDF's manifest states the same seals and unsealed
events but carries no seal evidence: the summary holds no events to check against them.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson

from audit.canonical import (
    EVENT_FIELDS,
    SEAL_FIELDS,
    canonical_event,
    canonical_time,
    event_leaf,
    pack_manifest,
    unpack_manifest,
)
from audit.exports.events import period_events
from audit.models import AuditEvent, AuditSeal
from audit.signing import current_signing_key, sign

MANIFEST_FORMAT = "mcp-gateway-audit-export-manifest"
MANIFEST_VERSION = 1
MANIFEST_SUFFIX = ".manifest.json"
_BASE64_CHUNK = 3 * 40 * 1024  # bytes of a seal's leaf list encoded at a time
_IDS_PER_QUERY = 900  # ids per ``id IN (...)``: within SQLite's oldest parameter limit
SEAL_HEADER_FIELDS = (*SEAL_FIELDS, "signature", "seal_hash")


@dataclass(frozen=True, slots=True)
class ExportScope:
    """Whose events and which period an export holds."""

    tenant_id: int
    tenant_name: str
    since: datetime
    until: datetime

    def holds(self, tenant_id: int | None, created_at: datetime) -> bool:
        return tenant_id == self.tenant_id and self.since <= created_at < self.until


@dataclass(frozen=True, slots=True)
class ExportFile:
    """The export file as written."""

    name: str
    format: str
    sha256: str
    size: int
    events: int


@dataclass(frozen=True, slots=True)
class ManifestFacts:
    """What a written manifest says, for the caller's report."""

    seals: int
    unsealed: int
    missing: int


def manifest_path_for(path: Path) -> Path:
    return path.with_name(path.name + MANIFEST_SUFFIX)


def statement_bytes(statement: dict[str, Any]) -> bytes:
    """The canonical bytes of a statement: what is signed."""
    return orjson.dumps(statement, option=orjson.OPT_SORT_KEYS)


def write_manifest(*, scope: ExportScope, file: ExportFile, path: Path, now: datetime) -> ManifestFacts:
    """Write the manifest of ``file`` to ``path`` (call inside the export's snapshot)."""
    seal_ids = covered_seal_ids(scope)
    headers = [_seal_header(seal) for seal in _seals(seal_ids).defer("manifest")]
    missing: list[list[int]] = []
    with tempfile.TemporaryFile() as evidence:
        evidence.write(b'{"seals":')
        _write_seal_evidence(evidence, scope, seal_ids if file.format != "pdf" else set(), missing)
        evidence.write(b',"unsealed":')
        unsealed = _write_unsealed(evidence, scope)
        evidence.write(b"}")
        statement = {
            "version": MANIFEST_VERSION,
            "file": {
                "name": file.name,
                "format": file.format,
                "sha256": file.sha256,
                "bytes": file.size,
                "events": file.events,
            },
            "tenant": {"id": scope.tenant_id, "name": scope.tenant_name},
            "period": {"since": canonical_time(scope.since), "until": canonical_time(scope.until)},
            "exported_at": canonical_time(now),
            "seals": headers,
            "unsealed": unsealed,
            "missing": missing,
        }
        key = current_signing_key()
        signature = {
            "algorithm": "Ed25519",
            "key_id": key.key_id,
            "value": sign(key, statement_bytes(statement)),
        }
        head = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "statement": statement}
        with path.open("wb") as out:
            out.write(orjson.dumps(head)[:-1])  # the object left open for the members below
            out.write(b',"signature":' + orjson.dumps(signature))
            out.write(b',"evidence":')
            evidence.seek(0)
            shutil.copyfileobj(evidence, out)
            out.write(b"}\n")
    return ManifestFacts(seals=len(headers), unsealed=unsealed["events"], missing=len(missing))


def covered_seal_ids(scope: ExportScope) -> set[int]:
    """The seals of the period's events, the tenant's seals made in the period and the first after it."""
    events = period_events(tenant_id=scope.tenant_id, since=scope.since, until=scope.until)
    ids = set(events.filter(seal__isnull=False).order_by().values_list("seal_id", flat=True).distinct())
    tenant_seals = AuditSeal.objects.filter(tenant_id=scope.tenant_id)
    made_in_period = tenant_seals.filter(created_at__gte=scope.since, created_at__lt=scope.until)
    ids.update(made_in_period.values_list("id", flat=True))
    next_one = (
        tenant_seals.filter(created_at__gte=scope.until).order_by("sequence").values_list("id", flat=True)
    )
    ids.update(next_one[:1])
    return ids


def _seals(seal_ids: set[int]) -> Any:
    return AuditSeal.objects.filter(id__in=sorted(seal_ids)).order_by("sequence")


def _seal_header(seal: AuditSeal) -> dict[str, Any]:
    header = {name: getattr(seal, name) for name in SEAL_HEADER_FIELDS}
    header["created_at"] = canonical_time(seal.created_at)
    return header


def _write_unsealed(out: IO[bytes], scope: ExportScope) -> dict[str, Any]:
    """Write ``[id, leaf hex]`` of the period's events not sealed yet, ids ascending, a page at a time;
    returns their count and the SHA-256 of their packed list (see module doc)."""
    query = period_events(tenant_id=scope.tenant_id, since=scope.since, until=scope.until)
    query = query.filter(seal__isnull=True).order_by("id")
    digest, count, last = hashlib.sha256(), 0, 0
    out.write(b"[")
    while page := list(query.filter(id__gt=last).values(*EVENT_FIELDS)[:1000]):
        entries = [(row["id"], event_leaf(row)) for row in page]
        digest.update(pack_manifest(entries))
        listed = orjson.dumps([[event_id, leaf.hex()] for event_id, leaf in entries])[1:-1]
        out.write((b"," if count else b"") + listed)
        count += len(entries)
        last = page[-1]["id"]
    out.write(b"]")
    return {"events": count, "sha256": digest.hexdigest()}


def _write_seal_evidence(
    out: IO[bytes], scope: ExportScope, seal_ids: set[int], missing: list[list[int]]
) -> None:
    """The evidence array, one covered seal at a time (one seal's leaves in memory at most)."""
    out.write(b"[")
    for position, seal_id in enumerate(_seals(seal_ids).values_list("id", flat=True)):
        seal = AuditSeal.objects.only("sequence", "manifest").get(id=seal_id)
        raw = bytes(seal.manifest)
        ids = [event_id for event_id, _ in unpack_manifest(raw)]
        outside = list(_outside_period(scope, seal.sequence, ids, missing))
        out.write(b"," if position else b"")
        out.write(b'{"sequence":%d,"leaves":"' % seal.sequence)
        for start in range(0, len(raw), _BASE64_CHUNK):  # a whole number of 3-byte groups: no padding inside
            out.write(base64.b64encode(raw[start : start + _BASE64_CHUNK]))
        out.write(b'","outside_period":' + orjson.dumps(outside) + b"}")
    out.write(b"]")


def _outside_period(
    scope: ExportScope, sequence: int, ids: list[int], missing: list[list[int]]
) -> Iterable[str]:
    """The canonical form of each event of ``ids`` that is not an event of the export; the ids no longer
    in the database are added to ``missing``."""
    for start in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ids[start : start + _IDS_PER_QUERY]
        found = {
            event_id: scope.holds(tenant_id, created_at)
            for event_id, tenant_id, created_at in AuditEvent.objects.filter(id__in=chunk).values_list(
                "id", "tenant_id", "created_at"
            )
        }
        missing.extend([sequence, event_id] for event_id in chunk if event_id not in found)
        outside = [event_id for event_id, inside in found.items() if not inside]
        rows = AuditEvent.objects.filter(id__in=outside).order_by("id").values(*EVENT_FIELDS)
        for row in rows:
            yield canonical_event(row).decode()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
