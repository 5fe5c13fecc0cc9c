"""Writes of the audit app: sealing the trail, and recording its verification.

**Sealing** is exactly-once and gap-free with any number of writers. Events arrive in completion
order from every gateway process (audit/writer.py), so ids are not commit order: an event whose
transaction commits late can have a lower id than events already sealed. The sealer therefore never
seals "ids above the last seal"; it seals *the events not yet sealed*. Per chain (a tenant's events;
the events without a tenant form one more chain), in one transaction, it takes the chain's lock
(PostgreSQL: a transaction-scoped advisory lock, so two sealers never seal the same events; the
embedded SQLite default has one process and SQLite runs one writer at a time), reads up to
``max_events`` unsealed events in id order, writes the seal and sets the events' ``seal`` to it.
An event committed after that read stays unsealed and goes into a later seal; none is skipped and
none is sealed twice (only the sealer sets ``seal``, and only on events it read unsealed under the
lock).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass
from datetime import datetime

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit.canonical import (
    EVENT_FIELDS,
    GENESIS_HASH,
    event_leaf,
    merkle_root,
    pack_manifest,
    seal_bytes,
    seal_document,
)
from audit.models import AuditEvent, AuditSeal, AuditVerification, in_chain
from audit.signing import current_signing_key, sign
from audit.verification import ChainReport, verify_chain
from gateway.conf import gateway_settings

logger = logging.getLogger(__name__)

_UPDATE_CHUNK = 900  # ids per UPDATE ... WHERE id IN (...): within SQLite's oldest parameter limit


@dataclass
class SealReport:
    """What one sealing run did."""

    seals: int = 0
    events: int = 0
    failed_chains: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def audit_seal_run(*, max_events: int | None = None) -> SealReport:
    """Seal every chain's unsealed events, in seals of at most ``max_events`` (default
    ``GATEWAY_AUDIT_SEAL_MAX_EVENTS``).

    A chain the database fails to seal is logged and counted, and the others are sealed; the next run
    seals what this one did not. Raises NoSigningKey without GATEWAY_AUDIT_SIGNING_KEYS, and the
    database's errors outside a chain (the caller logs them).
    """
    limit = max_events or gateway_settings().audit_seal_max_events
    current_signing_key()
    report = SealReport()
    for tenant_id in _chains_with_unsealed_events():
        try:
            _seal_chain(tenant_id, limit, report)
        except DatabaseError as exc:  # e.g. one chain's lock wait cut short: the others go on
            report.failed_chains += 1
            logger.warning("sealing the audit chain of tenant %s failed: %s", tenant_id, type(exc).__name__)
    return report


def _seal_chain(tenant_id: int | None, limit: int, report: SealReport) -> None:
    while (seal := audit_chain_seal(tenant_id=tenant_id, max_events=limit)) is not None:
        report.seals += 1
        report.events += seal.event_count
        if seal.event_count < limit:
            return


def _chains_with_unsealed_events() -> list[int | None]:
    query = AuditEvent.objects.filter(seal__isnull=True).order_by().values_list("tenant_id", flat=True)
    return list(query.distinct())


def audit_chain_seal(*, tenant_id: int | None, max_events: int) -> AuditSeal | None:
    """Seal up to ``max_events`` of the chain's unsealed events (lowest ids first) into its next seal.

    Returns the seal, or None when the chain had nothing to seal.
    """
    key = current_signing_key()
    with transaction.atomic():
        _lock_chain(tenant_id)
        unsealed = AuditEvent.objects.filter(in_chain(tenant_id), seal__isnull=True).order_by("id")
        rows = list(unsealed.values(*EVENT_FIELDS)[:max_events])
        if not rows:
            return None
        previous = AuditSeal.objects.filter(in_chain(tenant_id)).order_by("-sequence").first()
        entries = [(row["id"], event_leaf(row)) for row in rows]
        manifest = pack_manifest(entries)
        fields = {
            "tenant_id": tenant_id,
            "sequence": previous.sequence + 1 if previous else 1,
            "first_event_id": entries[0][0],
            "last_event_id": entries[-1][0],
            "event_count": len(entries),
            "root": merkle_root([leaf for _, leaf in entries]).hex(),
            "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
            # Recomputed, not the stored seal_hash: the link is to what the previous seal's signature covers.
            "previous_hash": hashlib.sha256(seal_bytes(previous)).hexdigest() if previous else GENESIS_HASH,
            "created_at": timezone.now(),
        }
        document = seal_document(**fields, key_id=key.key_id)
        seal = AuditSeal.objects.create(
            **fields,
            manifest=manifest,
            key_id=key.key_id,
            seal_hash=hashlib.sha256(document).hexdigest(),
            signature=sign(key, document),
        )
        ids = [event_id for event_id, _ in entries]
        for start in range(0, len(ids), _UPDATE_CHUNK):
            AuditEvent.objects.filter(id__in=ids[start : start + _UPDATE_CHUNK]).update(seal=seal)
    return seal


def _lock_chain(tenant_id: int | None) -> None:
    """Hold the chain's sealing lock until the transaction ends (PostgreSQL; see module doc)."""
    if connection.vendor != "postgresql":
        return
    digest = hashlib.sha256(f"audit-seal:{tenant_id}".encode()).digest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest[:8], "big", signed=True)])


def audit_verify(*, tenant_id: int | None = None, since: datetime | None = None) -> list[ChainReport]:
    """Verify the chain of ``tenant_id``, or every chain when it is None, and record each result as an
    :class:`AuditVerification`. See audit/verification.py for what is checked."""
    chains = _all_chains() if tenant_id is None else [tenant_id]
    reports = []
    for chain in chains:
        report = verify_chain(tenant_id=chain, since=since, now=timezone.now())
        AuditVerification.objects.create(
            tenant_id=chain,
            verified_at=timezone.now(),
            ok=report.ok,
            seals_checked=report.seals_checked,
            events_checked=report.events_checked,
            first_problem=report.problems[0].message if report.problems else "",
            problems=[problem.as_dict() for problem in report.problems[:100]],
        )
        reports.append(report)
    return reports


def _all_chains() -> list[int | None]:
    sealed = AuditSeal.objects.order_by().values_list("tenant_id", flat=True).distinct()
    chains = set(sealed) | set(_chains_with_unsealed_events())
    return sorted(chains, key=lambda chain: (chain is not None, chain or 0))
