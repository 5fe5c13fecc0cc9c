"""Writes of the SIEM streaming: creating and changing sinks, and the delivery run.

**Delivery** (:func:`siem_deliver_run`, every ``GATEWAY_SIEM_POLL_SECONDS``): for each enabled sink,
the ones failing least first, :func:`siem_sink_deliver` takes the sink's lease (a short
``SELECT ... FOR UPDATE SKIP LOCKED`` on its state row, then a lease time written there, so the
network I/O holds no database lock and a process that dies mid-batch only delays the sink until the
lease runs out), reads the next events of the sink's tenant after its cursor (and those that appeared
in recently passed holes: audit/siem/cursor.py), sends at most ``batch_size`` of them and, once the
sink acknowledged, moves the cursor, all under the lease token. A failure moves nothing: it is
recorded (``last_error``, ``failures``) and the sink waits an exponential backoff with jitter
(``retry_initial_seconds`` doubling up to ``retry_max_seconds``, times 0.5-1.0) before it is tried
again. Every network phase is bounded by the sink's ``timeout_seconds``, so a dead sink delays the
others of one run by at most that, and only when its backoff has run out.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from functools import reduce
from operator import or_
from typing import Any

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from audit.canonical import EVENT_FIELDS
from audit.models import AuditEvent, SiemSink, SiemSinkState
from audit.siem.config import MIN_SECRET_LENGTH, FileConfig, SinkConfig, SyslogConfig, sink_config
from audit.siem.cursor import Hole, holes_filled, holes_from_json, holes_kept, holes_passed
from audit.siem.jsonl import append_jsonl
from audit.siem.records import SiemRecord, siem_record
from audit.siem.syslog import send_syslog
from audit.siem.transport import DeliveryError, describe
from audit.siem.webhook import send_webhook
from gateway.conf import gateway_settings
from gateway.crypto import SecretDecryptionError, decrypt_secret, encrypt_secret
from gateway.egress import EgressRefused
from gateway.models import Target, Tenant

logger = logging.getLogger(__name__)

SCAN_LIMIT = 5000  # event ids (of any tenant) looked at per batch
BACKLOG_CAP = 10_000  # events counted for the backlog figure
_MAX_BATCHES_PER_RUN = 20


# --- sinks ---------------------------------------------------------------------------------------


def siem_sink_config(sink: SiemSink) -> SinkConfig:
    """The sink's validated settings (ValidationError naming what is wrong)."""
    return sink_config(
        sink.kind,
        sink.settings,
        file_dir=gateway_settings().siem_file_dir,
        has_secret=bool(sink.secret_encrypted),
    )


def siem_sink_create(
    *,
    tenant: Tenant,
    name: str,
    kind: str,
    settings: dict[str, Any],
    secret: str = "",
    enabled: bool = True,
    from_start: bool = False,
) -> SiemSink:
    """Create a sink of ``tenant``. It receives the events written from now on (``from_start``: all
    the tenant's events still kept). A webhook's ``secret`` is stored encrypted and never shown again.
    Raises ValidationError naming a bad field or setting."""
    sink = SiemSink(tenant=tenant, name=name, kind=kind, settings=settings, enabled=enabled)
    siem_sink_prepare(sink=sink, secret=secret)
    return siem_sink_save(sink=sink, from_start=from_start)


def siem_sink_update(
    *,
    sink: SiemSink,
    settings: dict[str, Any] | None = None,
    enabled: bool | None = None,
    secret: str | None = None,
    name: str | None = None,
) -> SiemSink:
    """Rename a sink, change its settings, switch it on or off, or replace its secret (None, or an
    empty secret: kept). Where delivery stands is kept. Raises ValidationError naming a bad field or
    setting."""
    if name is not None:
        sink.name = name
    if settings is not None:
        sink.settings = settings
    if enabled is not None:
        sink.enabled = enabled
    siem_sink_prepare(sink=sink, secret=secret)
    return siem_sink_save(sink=sink)


def siem_sink_delete(*, sink: SiemSink) -> None:
    """Delete a sink and where its delivery stands; retention no longer waits for it."""
    sink.delete()


def siem_sink_prepare(*, sink: SiemSink, secret: str | None) -> None:
    """Set a new secret on the unsaved ``sink`` (encrypted; None or empty keeps a webhook's current one,
    another kind has none) and check its settings for its kind. Raises ValidationError. The admin's
    form calls it too, so the rules are stated once."""
    _set_secret(sink, secret or "")
    siem_sink_config(sink)


def siem_sink_save(*, sink: SiemSink, from_start: bool = False) -> SiemSink:
    """Save a prepared sink; a new one starts after the newest event (``from_start``: at the first)."""
    sink.full_clean()
    with transaction.atomic():
        sink.save()
        SiemSinkState.objects.get_or_create(
            sink=sink, defaults={"cursor": 0 if from_start else _last_event_id()}
        )
    return sink


def _set_secret(sink: SiemSink, secret: str) -> None:
    if sink.kind != SiemSink.Kind.WEBHOOK:
        if secret:
            raise ValidationError({"secret": f"a {sink.kind} sink takes no secret"})
        sink.secret_encrypted = ""
        return
    if secret and (len(secret) < MIN_SECRET_LENGTH or secret != secret.strip()):
        raise ValidationError(
            {"secret": f"must be {MIN_SECRET_LENGTH} or more characters without surrounding spaces"}
        )
    if secret:
        sink.secret_encrypted = encrypt_secret(secret)


def _last_event_id() -> int:
    return AuditEvent.objects.aggregate(last=Max("id"))["last"] or 0


# --- delivery ------------------------------------------------------------------------------------


@dataclass
class SiemRunReport:
    """What one delivery run did over all sinks."""

    sinks: int = 0
    delivered: int = 0
    failed: int = 0
    skipped: int = 0
    errors: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def siem_deliver_run() -> SiemRunReport:
    """Deliver to every enabled sink what it has not received yet (see module doc)."""
    report = SiemRunReport()
    sinks = SiemSink.objects.filter(enabled=True).order_by("state__failures", "id").values_list("id", "name")
    for sink_id, name in list(sinks):
        report.sinks += 1
        try:
            outcome = siem_sink_deliver(sink_id=sink_id)
        except Exception as exc:  # one sink's failure (even a bug) never stops the others
            logger.warning("SIEM delivery to sink %s failed: %s", sink_id, type(exc).__name__)
            report.failed += 1
            report.errors[name] = type(exc).__name__
            continue
        if outcome.error:
            report.failed += 1
            report.errors[name] = outcome.error
        elif outcome.skipped:
            report.skipped += 1
        report.delivered += outcome.delivered
    return report


@dataclass
class SinkOutcome:
    """What one delivery to one sink did."""

    delivered: int = 0
    skipped: bool = False
    error: str = ""


@dataclass
class _Lease:
    sink_id: int
    token: str
    seconds: float
    cursor: int
    holes: list[Hole]


def siem_sink_deliver(*, sink_id: int) -> SinkOutcome:
    """Deliver the sink's pending events, batch by batch, while it acknowledges them (module doc).

    Skipped when another process holds its lease or its backoff has not run out.
    """
    sink = SiemSink.objects.select_related("tenant").get(pk=sink_id)
    try:
        config = siem_sink_config(sink)
        secret = decrypt_secret(sink.secret_encrypted) if sink.secret_encrypted else ""
    except (ValidationError, SecretDecryptionError, ImproperlyConfigured) as exc:
        config, secret, problem = None, "", _config_problem(exc)
    else:
        problem = ""
    lease = _claim(sink_id, _lease_seconds(config))
    if lease is None:
        return SinkOutcome(skipped=True)
    if config is None:
        _record_failure(lease, problem, retry_initial=60.0, retry_max=3600.0, tenant_id=sink.tenant_id)
        return SinkOutcome(error=problem)
    return _deliver_batches(sink, config, secret, lease)


def _deliver_batches(sink: SiemSink, config: SinkConfig, secret: str, lease: _Lease) -> SinkOutcome:
    outcome = SinkOutcome()
    started = time.monotonic()
    for _ in range(_MAX_BATCHES_PER_RUN):
        window = _next_window(sink.tenant_id, lease.cursor, lease.holes, config.delivery.batch_size)
        try:
            if window.records:
                _send(config, secret, window.records)
        except (DeliveryError, EgressRefused, OSError) as exc:
            outcome.error = describe(exc)
            delivery = config.delivery
            _record_failure(
                lease,
                outcome.error,
                retry_initial=delivery.retry_initial_seconds,
                retry_max=delivery.retry_max_seconds,
                tenant_id=sink.tenant_id,
            )
            return outcome
        if not _record_progress(lease, window, sink.tenant_id):
            return outcome  # the lease ran out meanwhile: another process carries on
        outcome.delivered += len(window.records)
        if not window.more or time.monotonic() - started > lease.seconds / 2:
            break
    _release(lease)
    return outcome


def _send(config: SinkConfig, secret: str, records: list[SiemRecord]) -> None:
    if isinstance(config, SyslogConfig):
        send_syslog(config, records)
    elif isinstance(config, FileConfig):
        append_jsonl(config, records)
    else:
        send_webhook(config, secret, records)


def _config_problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "settings: " + "; ".join(exc.messages)
    return f"secret: {type(exc).__name__}"


def _lease_seconds(config: SinkConfig | None) -> float:
    """Long enough for a batch's every network phase to time out, with room to spare."""
    timeout = config.delivery.timeout_seconds if config is not None else 10.0
    return max(60.0, 4 * timeout)


def _claim(sink_id: int, seconds: float) -> _Lease | None:
    """Take the sink's lease, or None when another process holds it or its backoff is not over."""
    now = timezone.now()
    with transaction.atomic():
        state = SiemSinkState.objects.select_for_update(skip_locked=True).filter(pk=sink_id).first()
        if state is None:
            if SiemSinkState.objects.filter(pk=sink_id).exists():
                return None  # locked by another process this instant
            state = SiemSinkState.objects.create(sink_id=sink_id, cursor=_last_event_id())
        if (state.lease_until and state.lease_until > now) or (
            state.next_attempt_at and state.next_attempt_at > now
        ):
            return None
        token = uuid.uuid4().hex
        SiemSinkState.objects.filter(pk=sink_id).update(
            lease_token=token, lease_until=now + timedelta(seconds=seconds), last_attempt_at=now
        )
    return _Lease(sink_id, token, seconds, state.cursor, holes_from_json(state.holes))


@dataclass
class _Window:
    """The next batch of one sink: its records, the cursor and holes once it is acknowledged, and
    whether more events are waiting."""

    records: list[SiemRecord]
    cursor: int
    holes: list[Hole]
    more: bool


def _next_window(tenant_id: int, cursor: int, holes: list[Hole], batch_size: int) -> _Window:
    """Up to ``batch_size`` events of the tenant: first those that appeared in holes, then the next
    after the cursor; ids of other tenants' events only move the cursor."""
    now = time.time()
    late: list[tuple[int, int | None]] = []
    if holes:
        in_holes = reduce(or_, (Q(id__range=(hole.low, hole.high)) for hole in holes))
        query = AuditEvent.objects.filter(in_holes).order_by("id").values_list("id", "tenant_id")
        late = list(query[:SCAN_LIMIT])
    scanned = list(
        AuditEvent.objects.filter(id__gt=cursor).order_by("id").values_list("id", "tenant_id")[:SCAN_LIMIT]
    )
    own: list[int] = []
    filled = _walk(late, tenant_id, own, batch_size)
    passed = _walk(scanned, tenant_id, own, batch_size)
    new_cursor = passed[-1] if passed else cursor
    new_holes = holes_kept(holes_filled(holes, filled) + holes_passed(cursor, passed, now), now)
    more = len(own) >= batch_size or len(scanned) == SCAN_LIMIT or len(late) == SCAN_LIMIT
    return _Window(_records(tenant_id, own), new_cursor, new_holes, more)


def _walk(
    rows: Sequence[tuple[int, int | None]], tenant_id: int, own: list[int], batch_size: int
) -> list[int]:
    """The ids of ``rows`` taken in order until ``own`` (the tenant's ids, appended to) is full."""
    taken = []
    for event_id, event_tenant in rows:
        if event_tenant == tenant_id:
            if len(own) >= batch_size:
                break
            own.append(event_id)
        taken.append(event_id)
    return taken


def _records(tenant_id: int, ids: list[int]) -> list[SiemRecord]:
    if not ids:
        return []
    rows = list(AuditEvent.objects.filter(id__in=ids).order_by("id").values(*EVENT_FIELDS))
    tenant_name = Tenant.objects.filter(pk=tenant_id).values_list("name", flat=True).first()
    target_ids = {row["target_id"] for row in rows if row["target_id"]}
    targets = dict(Target.objects.filter(id__in=target_ids).values_list("id", "slug"))
    return [
        siem_record(row, tenant_name=tenant_name, target_name=targets.get(row["target_id"])) for row in rows
    ]


def _backlog(tenant_id: int, cursor: int) -> int:
    return AuditEvent.objects.filter(tenant_id=tenant_id, id__gt=cursor).order_by()[:BACKLOG_CAP].count()


def _record_progress(lease: _Lease, window: _Window, tenant_id: int) -> bool:
    """Move the cursor past an acknowledged batch (and extend the lease); False if the lease was lost."""
    now = timezone.now()
    fields: dict[str, Any] = {
        "cursor": window.cursor,
        "holes": [hole.as_json() for hole in window.holes],
        "lease_until": now + timedelta(seconds=lease.seconds),
        "backlog": _backlog(tenant_id, window.cursor),
    }
    if window.records:
        fields.update(
            failures=0,
            last_error="",
            last_success_at=now,
            next_attempt_at=None,
            delivered=F("delivered") + len(window.records),
        )
    updated = SiemSinkState.objects.filter(pk=lease.sink_id, lease_token=lease.token).update(**fields)
    lease.cursor, lease.holes = window.cursor, window.holes
    return bool(updated)


def _record_failure(
    lease: _Lease, error: str, *, retry_initial: float, retry_max: float, tenant_id: int
) -> None:
    """Note the failure and when to try again (exponential backoff with jitter); the cursor stays."""
    now = timezone.now()
    state = SiemSinkState.objects.filter(pk=lease.sink_id, lease_token=lease.token)
    failures = (state.values_list("failures", flat=True).first() or 0) + 1
    state.update(
        failures=failures,
        last_error=f"{now:%Y-%m-%d %H:%M:%S} UTC: {error}"[:1000],
        next_attempt_at=now + timedelta(seconds=backoff_seconds(failures, retry_initial, retry_max)),
        backlog=_backlog(tenant_id, lease.cursor),
        lease_token="",
        lease_until=None,
    )
    logger.warning(
        "SIEM sink %s: delivery failed (%s attempt(s) in a row): %s", lease.sink_id, failures, error
    )


def backoff_seconds(failures: int, initial: float, maximum: float) -> float:
    """The wait after ``failures`` failures in a row: ``initial`` doubling up to ``maximum``, times a
    random 0.5-1.0 so sinks failing together do not retry together."""
    return float(min(maximum, initial * 2 ** min(failures - 1, 40))) * random.uniform(0.5, 1.0)


def _release(lease: _Lease) -> None:
    SiemSinkState.objects.filter(pk=lease.sink_id, lease_token=lease.token).update(
        lease_token="", lease_until=None
    )


def siem_sink_reset_backoff(*, sink: SiemSink) -> None:
    """Try the sink again at the next run instead of waiting out its backoff."""
    SiemSinkState.objects.filter(pk=sink.pk).update(next_attempt_at=None)
