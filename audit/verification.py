"""Recomputing a chain of audit seals, and naming what was tampered with.

For each seal of the chain, in sequence order:

- **signature**: the Ed25519 signature over the seal's canonical bytes verifies with the key it
  names (any key in GATEWAY_AUDIT_SIGNING_KEYS, so seals of a rotated-out signing key still verify);
- **link**: its ``previous_hash`` is the hash of the chain's previous seal (64 zeros for seal #1),
  so a seal removed, replaced or re-ordered is named;
- **manifest**: the stored (id, leaf) list has the signed SHA-256, its Merkle root is the signed
  root, and its count and first/last ids are the seal's;
- **events**: the events that carry the seal, against the manifest, in id order: an id listed but
  absent is **deleted**; an event not listed is **inserted**; an event whose leaf differs is
  **moved** when its content is what the seal holds for another of its ids (two events swapped),
  else **edited**.

**Retention** (audit/retention.py) deletes the events of whole seals and keeps the seals. A seal at or
below the chain's retention horizon (the newest *sealed* retention entry's ``pruned_through_sequence``)
is verified by its signature, its link and its manifest; its events are *pruned*, not deleted, and
any of them still present must match the manifest. An event missing from any later seal is deleted,
whoever removed it; and a retention entry that was edited, removed or forged fails like any event.

And, as ids are given at insert time and an insert transaction lasts well under
:data:`LATE_COMMIT_GRACE`: an event with a lower id than the last event of a seal made more than
that grace before the event was sealed (or before now, if it is still unsealed) was **inserted**
after that seal. Legitimately late events (a transaction still open while a seal was made) are
sealed within the grace; events drained late from the write-ahead file get new, higher ids.
"""

from __future__ import annotations

import bisect
import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from audit.canonical import (
    EVENT_FIELDS,
    GENESIS_HASH,
    event_leaf,
    merkle_root,
    seal_bytes,
    unpack_manifest,
)
from audit.models import AuditEvent, AuditSeal, in_chain
from audit.signing import signature_problem

LATE_COMMIT_GRACE = timedelta(minutes=5)
# A mismatched event is compared with the other mismatched ids of its seal to tell a move from an
# edit; past this many mismatches in one seal they are all reported as edits (the cost is quadratic).
_MOVE_CANDIDATES = 100


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing that does not verify: its kind, the seal (sequence) and event (id) it concerns."""

    kind: str  # signature, link, manifest, edited, deleted, inserted, moved
    message: str
    seal: int | None = None
    event: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ChainReport:
    """What verifying one chain found, problems in chain order (the first is the first bad one)."""

    tenant_id: int | None
    seals_checked: int = 0
    events_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    pruned_seals: int = 0  # seals checked whose events retention deleted
    retained_from: str | None = None  # the cutoff of the retention run that pruned the last of them

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "ok": self.ok,
            "seals_checked": self.seals_checked,
            "events_checked": self.events_checked,
            "first_problem": self.problems[0].as_dict() if self.problems else None,
            "problems": [problem.as_dict() for problem in self.problems],
            "pruned_seals": self.pruned_seals,
            "retained_from": self.retained_from,
        }

    def retention_note(self) -> str:
        """E.g. "3 seal(s) pruned by retention (events before 2026-01-01T00:00:00...)", or ""."""
        if not self.pruned_seals:
            return ""
        return f"{self.pruned_seals} seal(s) pruned by retention (events before {self.retained_from} deleted)"


class _Timeline:
    """The chain's seals by creation time: the highest event id sealed up to a given moment."""

    def __init__(self, tenant_id: int | None) -> None:
        seals = AuditSeal.objects.filter(in_chain(tenant_id)).order_by("created_at", "sequence")
        self.times: list[datetime] = []
        self.highest: list[tuple[int, int]] = []  # running (max last_event_id, its seal's sequence)
        rows = seals.values_list("created_at", "last_event_id", "sequence")
        for created_at, last_event_id, sequence in rows:
            best = self.highest[-1] if self.highest else (0, 0)
            self.times.append(created_at)
            self.highest.append(max(best, (last_event_id, sequence)))

    def sealed_by(self, moment: datetime) -> tuple[int, int]:
        """``(highest event id, seal sequence)`` sealed at or before ``moment``; (0, 0) if none."""
        position = bisect.bisect_right(self.times, moment)
        return self.highest[position - 1] if position else (0, 0)


def verify_chain(*, tenant_id: int | None, since: datetime | None, now: datetime) -> ChainReport:
    """Verify the chain of ``tenant_id`` (seals made at or after ``since``, all when None)."""
    from audit.retention import retention_horizon

    report = ChainReport(tenant_id=tenant_id)
    timeline = _Timeline(tenant_id)
    horizon = retention_horizon(tenant_id)
    pruned_through = horizon.through if horizon else 0
    seals = AuditSeal.objects.filter(in_chain(tenant_id)).order_by("sequence")
    if since is not None:
        seals = seals.filter(created_at__gte=since)
    previous: AuditSeal | None = None
    for seal in seals.iterator(chunk_size=20):
        report.seals_checked += 1
        _check_seal(seal, previous, report)
        pruned = seal.sequence <= pruned_through
        if pruned:
            report.pruned_seals += 1
            report.retained_from = horizon.retained_from if horizon else None
        _check_events(seal, timeline.sealed_by(seal.created_at - LATE_COMMIT_GRACE), report, pruned=pruned)
        previous = seal
    _check_unsealed(tenant_id, timeline.sealed_by(now - LATE_COMMIT_GRACE), report)
    return report


def _check_seal(seal: AuditSeal, previous: AuditSeal | None, report: ChainReport) -> None:
    """The seal's signature and its link to the chain's previous seal."""
    problem = signature_problem(seal.key_id, seal_bytes(seal), seal.signature)
    if problem:
        report.problems.append(Problem("signature", f"seal #{seal.sequence}: {problem}", seal.sequence))
    if previous is None or previous.sequence != seal.sequence - 1:
        previous = AuditSeal.objects.filter(in_chain(seal.tenant_id), sequence=seal.sequence - 1).first()
    if seal.sequence == 1:
        expected = GENESIS_HASH
    elif previous is None:
        report.problems.append(
            Problem("link", f"seal #{seal.sequence}: seal #{seal.sequence - 1} is missing", seal.sequence)
        )
        return
    else:
        expected = hashlib.sha256(seal_bytes(previous)).hexdigest()
    if seal.previous_hash != expected:
        report.problems.append(
            Problem(
                "link",
                f"seal #{seal.sequence}: previous_hash is not the hash of seal #{seal.sequence - 1}",
                seal.sequence,
            )
        )


def _manifest(seal: AuditSeal, report: ChainReport) -> dict[int, bytes] | None:
    """The seal's (id -> leaf) list when it is the one signed, else None (a problem is added)."""
    raw = bytes(seal.manifest)
    entries: list[tuple[int, bytes]] = []
    if hashlib.sha256(raw).hexdigest() == seal.manifest_sha256:
        entries = list(unpack_manifest(raw))
    ids = [event_id for event_id, _ in entries]
    if (
        not entries
        or merkle_root([leaf for _, leaf in entries]).hex() != seal.root
        or len(entries) != seal.event_count
        or (ids[0], ids[-1]) != (seal.first_event_id, seal.last_event_id)
        or ids != sorted(set(ids))
    ):
        message = f"seal #{seal.sequence}: its list of events is not the one signed"
        report.problems.append(Problem("manifest", message, seal.sequence))
        return None
    return dict(entries)


def seal_problems(seal: AuditSeal) -> list[Problem]:
    """What is wrong with one seal: its signature, its link, its manifest and its events (retention
    checks a seal this way before it deletes the seal's events)."""
    report = ChainReport(tenant_id=seal.tenant_id)
    _check_seal(seal, None, report)
    _check_events(seal, (0, 0), report)
    return report.problems


def _check_events(
    seal: AuditSeal, floor: tuple[int, int], report: ChainReport, *, pruned: bool = False
) -> None:
    """The events carrying ``seal`` against its manifest (see module doc); of a ``pruned`` seal, the
    events retention deleted are not missing."""
    expected = _manifest(seal, report)
    if expected is None:
        return
    rows = {row["id"]: row for row in AuditEvent.objects.filter(seal=seal).order_by().values(*EVENT_FIELDS)}
    report.events_checked += len(rows)
    number = seal.sequence
    found: list[Problem] = []
    mismatched: list[int] = []
    for event_id in sorted(expected.keys() | rows.keys()):
        if event_id not in rows and pruned:
            continue
        if event_id not in rows:
            message = f"event {event_id} sealed in seal #{number} is missing: deleted"
            found.append(Problem("deleted", message, number, event_id))
        elif event_id not in expected:
            message = f"event {event_id} carries seal #{number} but is not one of its events"
            found.append(Problem("inserted", message, number, event_id))
        elif event_leaf(rows[event_id]) != expected[event_id]:
            mismatched.append(event_id)
        elif event_id < floor[0]:
            message = (
                f"event {event_id} was sealed in seal #{number}, after seal #{floor[1]} had sealed event "
                f"{floor[0]} more than {_minutes(LATE_COMMIT_GRACE)} earlier: it was added after the fact"
            )
            found.append(Problem("inserted", message, number, event_id))
    found.extend(_edits(number, mismatched, rows, expected))
    report.problems.extend(sorted(found, key=lambda problem: problem.event or 0))


def _edits(
    number: int, mismatched: list[int], rows: dict[int, Any], expected: dict[int, bytes]
) -> list[Problem]:
    """Each mismatched event as moved (it holds what the seal has for another id) or edited."""
    candidates = mismatched if len(mismatched) <= _MOVE_CANDIDATES else []
    problems = []
    for event_id in mismatched:
        origin = next(
            (
                other
                for other in candidates
                if other != event_id and event_leaf({**rows[event_id], "id": other}) == expected[other]
            ),
            None,
        )
        if origin is not None:
            message = f"event {event_id} holds what seal #{number} sealed as event {origin}: moved"
            problems.append(Problem("moved", message, number, event_id))
        else:
            message = f"event {event_id} differs from what seal #{number} sealed: edited"
            problems.append(Problem("edited", message, number, event_id))
    return problems


def _check_unsealed(tenant_id: int | None, floor: tuple[int, int], report: ChainReport) -> None:
    """An unsealed event below the ids sealed more than the grace ago was added after the fact."""
    late = (
        AuditEvent.objects.filter(in_chain(tenant_id), seal__isnull=True, id__lt=floor[0])
        .order_by("id")
        .values_list("id", flat=True)
        .first()
    )
    if late is not None:
        message = (
            f"event {late} is not sealed although seal #{floor[1]} sealed event {floor[0]} more than "
            f"{_minutes(LATE_COMMIT_GRACE)} ago: it was added after the fact"
        )
        report.problems.append(Problem("inserted", message, None, late))


def _minutes(span: timedelta) -> str:
    return f"{span.total_seconds() / 60:g} minutes"
