"""Checking an export against its manifest offline, with only the gateway's public audit key(s).

No database is read. In order: the manifest's signature; each covered seal's signature, hash and link
to the seal before it (when both are covered); for event exports, each seal's leaf list against its
signed SHA-256 and Merkle root, and the events shown to lie outside the period against those leaves;
then every line of the file: an event of the export's tenant and period, in id order, once, whose leaf
hash is the one its seal (or, not sealed yet, the signed manifest) holds; then that every event of a
covered seal is in the file or shown to lie outside the period; last, the file's SHA-256 and size.
Problems about events come in id order (the file's order), so the first one names the first bad line.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import csv
import hashlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.canonical import (
    EVENT_FIELDS,
    SEAL_FIELDS,
    event_leaf,
    leaf_hash,
    merkle_root,
    pack_manifest,
    seal_document,
    unpack_manifest,
)
from audit.exports.formats import row_from_csv, row_from_line
from audit.exports.manifest import MANIFEST_FORMAT, MANIFEST_VERSION, statement_bytes

TrustedKeys = dict[str, Ed25519PublicKey]
_LAST = 2**63


@dataclass(frozen=True, slots=True)
class ExportProblem:
    """One thing that does not verify; ``line`` and ``event`` name where, when it is about an event."""

    kind: str  # manifest, signature, seal, link, malformed, edited, moved, inserted, removed, deleted, file
    message: str
    line: int | None = None
    event: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ExportReport:
    """What verifying one export found; ``problems`` in order, the first is the one to fix first."""

    events: int = 0
    seals: int = 0
    unsealed: int = 0
    problems: list[ExportProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "seals": self.seals,
            "unsealed": self.unsealed,
            "first_problem": self.problems[0].message if self.problems else None,
            "problems": [problem.as_dict() for problem in self.problems[:1000]],
            "notes": self.notes,
        }


@dataclass(frozen=True, slots=True)
class _Scope:
    tenant_id: int
    since: datetime
    until: datetime

    def holds(self, row: dict[str, Any]) -> bool:
        created = row["created_at"]
        return bool(row["tenant_id"] == self.tenant_id and self.since <= created < self.until)


class ManifestError(ValueError):
    """The manifest cannot be read at all."""


@dataclass
class _Expected:
    """What the manifest says the file holds: each sealed event's (seal, leaf), each unsealed one's leaf."""

    sealed: dict[int, tuple[int, bytes]] = field(default_factory=dict)
    unsealed: dict[int, bytes] = field(default_factory=dict)
    outside: set[int] = field(default_factory=set)
    missing: dict[int, int] = field(default_factory=dict)


def verify_export(*, data_path: Path, manifest_path: Path, keys: TrustedKeys) -> ExportReport:
    """Verify the export ``data_path`` against ``manifest_path`` with the trusted public ``keys``."""
    report = ExportReport()
    try:
        manifest = load_manifest(manifest_path)
        statement = manifest["statement"]
        scope = _Scope(
            tenant_id=int(statement["tenant"]["id"]),
            since=datetime.fromisoformat(statement["period"]["since"]),
            until=datetime.fromisoformat(statement["period"]["until"]),
        )
        file_facts = statement["file"]
    except (ManifestError, KeyError, TypeError, ValueError) as error:
        report.problems.append(ExportProblem("manifest", f"the manifest cannot be read: {error}"))
        return report
    head: list[ExportProblem] = []
    _check_manifest_signature(manifest, keys, head)
    try:
        seals = _check_seals(statement, scope, keys, head, report)
    except (KeyError, TypeError, ValueError) as error:
        head.append(ExportProblem("manifest", f"the manifest's seals cannot be read: {error!r}"))
        seals = {}
    event_problems: list[ExportProblem] = []
    if file_facts.get("format") in ("csv", "jsonl"):
        try:
            expected = _check_evidence(manifest, statement, seals, scope, head)
        except (KeyError, TypeError, ValueError) as error:
            head.append(ExportProblem("manifest", f"the manifest's evidence cannot be read: {error!r}"))
            expected = _Expected()
        _check_events(data_path, file_facts["format"], scope, expected, event_problems, report)
    tail = _check_file(data_path, file_facts)
    report.problems = head + event_problems + tail
    return report


def load_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = orjson.loads(path.read_bytes())
    except OSError as error:
        raise ManifestError(f"{path}: {error.strerror}") from None
    except orjson.JSONDecodeError:
        raise ManifestError("not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ManifestError("not an audit export manifest")
    if manifest.get("version") != MANIFEST_VERSION:
        raise ManifestError(f"manifest version {manifest.get('version')!r} is not {MANIFEST_VERSION}")
    return manifest


def _signature_problem(keys: TrustedKeys, key_id: str, data: bytes, signature: str) -> str | None:
    key = keys.get(key_id)
    if key is None:
        return f"signed by key {key_id!r}, which is not among the given public keys"
    try:
        key.verify(bytes.fromhex(signature), data)
    except (InvalidSignature, ValueError):
        return f"the signature does not verify with key {key_id}"
    return None


def _check_manifest_signature(manifest: dict[str, Any], keys: TrustedKeys, out: list[ExportProblem]) -> None:
    signature = manifest.get("signature")
    if not isinstance(signature, dict):
        out.append(ExportProblem("signature", "the manifest is not signed"))
        return
    problem = _signature_problem(
        keys,
        str(signature.get("key_id")),
        statement_bytes(manifest["statement"]),
        str(signature.get("value")),
    )
    if problem:
        out.append(ExportProblem("signature", f"the manifest: {problem}"))


def _check_seals(
    statement: dict[str, Any],
    scope: _Scope,
    keys: TrustedKeys,
    out: list[ExportProblem],
    report: ExportReport,
) -> dict[int, dict[str, Any]]:
    """Each covered seal's hash, signature and link; returns the seals by sequence."""
    seals: dict[int, dict[str, Any]] = {}
    hashes: dict[int, str] = {}
    for header in statement.get("seals", []):
        number = int(header["sequence"])
        fields = {name: header[name] for name in SEAL_FIELDS}
        fields["created_at"] = datetime.fromisoformat(header["created_at"])
        document = seal_document(**fields)
        hashes[number] = hashlib.sha256(document).hexdigest()
        seals[number] = header
        if header["tenant_id"] != scope.tenant_id:
            out.append(ExportProblem("seal", f"seal #{number} is not a seal of the export's tenant"))
        if hashes[number] != header["seal_hash"]:
            out.append(ExportProblem("seal", f"seal #{number}: its hash is not the hash of its fields"))
        problem = _signature_problem(keys, header["key_id"], document, header["signature"])
        if problem:
            out.append(ExportProblem("signature", f"seal #{number}: {problem}"))
    for number, header in sorted(seals.items()):
        if number - 1 in hashes and header["previous_hash"] != hashes[number - 1]:
            message = f"seal #{number}: previous_hash is not the hash of seal #{number - 1}"
            out.append(ExportProblem("link", message))
    report.seals = len(seals)
    return seals


def _check_evidence(
    manifest: dict[str, Any],
    statement: dict[str, Any],
    seals: dict[int, dict[str, Any]],
    scope: _Scope,
    out: list[ExportProblem],
) -> _Expected:
    """Each seal's leaves against what it signed; the events shown outside the period against them."""
    expected = _Expected()
    evidence = {int(item["sequence"]): item for item in manifest["evidence"]["seals"]}
    for number, header in sorted(seals.items()):
        item = evidence.get(number)
        leaves = _seal_leaves(number, header, item, out)
        if item is None or leaves is None:
            continue
        for event_id, leaf in leaves.items():
            expected.sealed[event_id] = (number, leaf)
        for text in item.get("outside_period", []):
            _check_outside(number, str(text).encode(), leaves, scope, expected, out)
    _unsealed(statement, manifest["evidence"]["unsealed"], expected, out)
    for number, event_id in statement.get("missing", []):
        expected.missing[int(event_id)] = int(number)
    return expected


def _unsealed(
    statement: dict[str, Any], listed: list[Any], expected: _Expected, out: list[ExportProblem]
) -> None:
    """The unsealed events' leaves, when their list is the one the statement signs."""
    entries = [(int(event_id), bytes.fromhex(leaf)) for event_id, leaf in listed]
    signed = statement["unsealed"]
    if (
        len(entries) != signed["events"]
        or hashlib.sha256(pack_manifest(entries)).hexdigest() != signed["sha256"]
    ):
        out.append(ExportProblem("manifest", "the list of unsealed events is not the one the manifest signs"))
        return
    expected.unsealed.update(entries)


def _seal_leaves(
    number: int, header: dict[str, Any], item: dict[str, Any] | None, out: list[ExportProblem]
) -> dict[int, bytes] | None:
    if item is None:
        out.append(ExportProblem("manifest", f"seal #{number}: the manifest holds no list of its events"))
        return None
    try:
        raw = base64.b64decode(str(item.get("leaves", "")), validate=True)
        entries = list(unpack_manifest(raw))
    except (binascii.Error, ValueError):
        entries, raw = [], b""
    ids = [event_id for event_id, _ in entries]
    if (
        not entries
        or hashlib.sha256(raw).hexdigest() != header["manifest_sha256"]
        or merkle_root([leaf for _, leaf in entries]).hex() != header["root"]
        or len(entries) != header["event_count"]
        or ids != sorted(set(ids))
    ):
        out.append(
            ExportProblem("manifest", f"seal #{number}: the list of its events is not the one it signed")
        )
        return None
    return dict(entries)


def _check_outside(
    number: int,
    canonical: bytes,
    leaves: dict[int, bytes],
    scope: _Scope,
    expected: _Expected,
    out: list[ExportProblem],
) -> None:
    try:
        row = row_from_line(canonical)
        event_id = int(row["id"])
    except (ValueError, TypeError):
        out.append(
            ExportProblem("manifest", f"seal #{number}: an event shown outside the period is malformed")
        )
        return
    if leaves.get(event_id) != leaf_hash(canonical):
        message = f"seal #{number}: event {event_id} shown outside the period is not what the seal holds"
        out.append(ExportProblem("manifest", message, event=event_id))
    elif scope.holds(row):
        message = f"event {event_id} of seal #{number} lies in the period but is not in the file: removed"
        out.append(ExportProblem("removed", message, event=event_id))
        expected.outside.add(event_id)  # reported here, not again as missing
    else:
        expected.outside.add(event_id)


def _check_events(
    path: Path,
    format: str,
    scope: _Scope,
    expected: _Expected,
    out: list[ExportProblem],
    report: ExportReport,
) -> None:
    seen: dict[int, int] = {}  # event id -> line
    previous = 0
    for line, parsed in _rows(path, format):
        if isinstance(parsed, str):
            out.append(ExportProblem("malformed", f"line {line}: {parsed}", line))
            continue
        row, leaf = parsed
        event_id = row["id"]
        report.events += 1
        if event_id in seen:
            message = (
                f"line {line}: event {event_id} appears again (first on line {seen[event_id]}): inserted"
            )
            out.append(ExportProblem("inserted", message, line, event_id))
            continue
        seen[event_id] = line
        if event_id <= previous:
            message = f"line {line}: event {event_id} comes after event {previous}, out of id order: moved"
            out.append(ExportProblem("moved", message, line, event_id))
        previous = max(previous, event_id)
        _check_event(line, event_id, row, leaf, scope, expected, out)
    found: list[ExportProblem] = []
    _check_complete(seen, expected, found)
    out.extend(found)
    ordered = sorted(seen)
    out.sort(key=lambda problem: _position(problem, ordered, seen))
    report.unsealed = sum(1 for event_id in expected.unsealed if event_id in seen)


def _check_event(
    line: int,
    event_id: int,
    row: dict[str, Any],
    leaf: bytes,
    scope: _Scope,
    expected: _Expected,
    out: list[ExportProblem],
) -> None:
    if not scope.holds(row):
        message = f"line {line}: event {event_id} is not of the export's tenant and period: inserted"
        out.append(ExportProblem("inserted", message, line, event_id))
    elif event_id in expected.sealed:
        number, sealed = expected.sealed[event_id]
        if sealed != leaf:
            message = f"line {line}: event {event_id} differs from what seal #{number} sealed: edited"
            out.append(ExportProblem("edited", message, line, event_id))
    elif event_id in expected.unsealed:
        if expected.unsealed[event_id] != leaf:
            message = (
                f"line {line}: event {event_id} (not sealed yet) differs from the signed manifest: edited"
            )
            out.append(ExportProblem("edited", message, line, event_id))
    else:
        message = (
            f"line {line}: event {event_id} is in no covered seal and not among the unsealed events: inserted"
        )
        out.append(ExportProblem("inserted", message, line, event_id))


def _check_complete(seen: dict[int, int], expected: _Expected, out: list[ExportProblem]) -> None:
    """Every event of a covered seal, and every unsealed one listed, is in the file or outside the period."""
    ordered = sorted(seen)
    for event_id, (number, _) in expected.sealed.items():
        if event_id in seen or event_id in expected.outside:
            continue
        if event_id in expected.missing:
            message = (
                f"event {event_id} of seal #{number} was missing from the database when exported: deleted"
            )
            out.append(ExportProblem("deleted", message, None, event_id))
            continue
        where = _where(event_id, ordered, seen)
        message = f"event {event_id} of seal #{number} is missing from the file{where}: removed"
        out.append(ExportProblem("removed", message, None, event_id))
    for event_id in expected.unsealed.keys() - seen.keys():
        where = _where(event_id, ordered, seen)
        message = f"event {event_id} (not sealed yet) is missing from the file{where}: removed"
        out.append(ExportProblem("removed", message, None, event_id))


def _position(problem: ExportProblem, ordered: list[int], seen: dict[int, int]) -> float:
    """Where in the file a problem is: its line, or, for an event not in it, just before where it belongs."""
    if problem.line is not None:
        return problem.line
    position = bisect.bisect(ordered, problem.event or 0)
    return seen[ordered[position]] - 0.5 if position < len(ordered) else _LAST


def _where(event_id: int, ordered: list[int], seen: dict[int, int]) -> str:
    position = bisect.bisect(ordered, event_id)
    return f" (before line {seen[ordered[position]]})" if position < len(ordered) else " (at its end)"


def _rows(path: Path, format: str) -> Iterator[tuple[int, tuple[dict[str, Any], bytes] | str]]:
    """``(line, (row, leaf hash))`` per event of the file, or ``(line, what is wrong)``."""
    if format == "jsonl":
        with path.open("rb") as source:
            for number, raw in enumerate(source, start=1):
                line = raw[:-1] if raw.endswith(b"\n") else raw
                try:
                    row = row_from_line(line)
                    yield number, (row, leaf_hash(line))
                except (ValueError, TypeError) as error:
                    yield number, f"not an audit event in canonical form ({type(error).__name__})"
        return
    with path.open(newline="", encoding="utf-8", errors="replace") as source:
        reader = csv.reader(source)
        start = 1
        for cells in reader:
            number, start = start, reader.line_num + 1
            if number == 1:
                if cells != list(EVENT_FIELDS):
                    yield number, "the header is not the canonical column list"
                continue
            try:
                row = row_from_csv(cells)
                yield number, (row, event_leaf(row))
            except (ValueError, TypeError) as error:
                yield number, f"not an audit event ({error})"


def _check_file(path: Path, facts: dict[str, Any]) -> list[ExportProblem]:
    digest, size = hashlib.sha256(), 0
    try:
        with path.open("rb") as source:
            while chunk := source.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    except OSError as error:
        return [ExportProblem("file", f"the file cannot be read: {error.strerror}")]
    if digest.hexdigest() != facts.get("sha256") or size != facts.get("bytes"):
        return [
            ExportProblem(
                "file", f"the file's SHA-256 or size ({size} bytes) is not the one the manifest signs"
            )
        ]
    return []
