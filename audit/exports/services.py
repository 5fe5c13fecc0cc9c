"""Writes of audit exports: an export file and its signed manifest, and the admin's background exports.

``audit_export_write`` is what ``manage.py export_audit`` and the background job both call. The files
are written under temporary names and renamed into place only when whole, the manifest last, so a
file that has a manifest is complete. The admin's exports (:class:`~audit.models.AuditExport`) run as
the Celery task ``audit.export`` when a broker is configured, and otherwise (the embedded default) on
a thread of the gateway process: either way the request only creates the row and queues the job.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.db.models import Q
from django.utils import timezone

from audit.canonical import canonical_time
from audit.changes import current_change_actor
from audit.exports.events import export_snapshot, period_events
from audit.exports.formats import FORMATS
from audit.exports.manifest import ExportFile, ExportScope, manifest_path_for, sha256_of, write_manifest
from audit.exports.pdf import render_summary_pdf
from audit.exports.summary import export_summary
from audit.exports.writer import write_events
from audit.models import AuditEvent, AuditExport
from audit.records import event_record, sanitise_record
from audit.signing import current_signing_key
from gateway.conf import gateway_settings
from gateway.models import Tenant

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What an export wrote."""

    path: str
    manifest_path: str
    format: str
    events: int
    sha256: str
    bytes: int
    seals: int
    unsealed: int
    missing: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def audit_export_write(
    *,
    tenant: Tenant,
    since: datetime,
    until: datetime,
    format: str,
    output: Path,
    progress: Callable[[int, int], None] | None = None,
    actor: str | None = None,
    source: str | None = None,
) -> ExportResult:
    """Export the tenant's events with ``since <= created_at < until`` to ``output`` as ``format``
    (csv, jsonl or pdf), with the signed manifest beside it (``<output>.manifest.json``), and record
    the export in the tenant's trail (an admin event naming ``actor`` and ``source``, by default the
    change-log context's: the CLI's user, say).

    ``progress(done, total)`` is called as events are written. Raises ValidationError for a bad period
    or format, NoSigningKey (ImproperlyConfigured) without an audit signing key, OSError when the file
    cannot be written.
    """
    _validate(since=since, until=until, format=format)
    current_signing_key()  # fail before any work, not after the file is written
    scope = ExportScope(tenant_id=tenant.id, tenant_name=tenant.name, since=since, until=until)
    manifest_path = manifest_path_for(output)
    partial, partial_manifest = _partial(output), _partial(manifest_path)
    report = progress or (lambda done, total: None)
    try:
        with export_snapshot():
            total = period_events(tenant_id=tenant.id, since=since, until=until).count()
            report(0, total)
            file = _write_file(scope, format, partial, output.name, lambda done: report(done, total))
            facts = write_manifest(scope=scope, file=file, path=partial_manifest, now=timezone.now())
        os.replace(partial, output)
        os.replace(partial_manifest, manifest_path)
    finally:
        for leftover in (partial, partial_manifest):
            leftover.unlink(missing_ok=True)
    _record_export(scope, file, actor, source)
    return ExportResult(
        path=str(output),
        manifest_path=str(manifest_path),
        format=format,
        events=file.events,
        sha256=file.sha256,
        bytes=file.size,
        seals=facts.seals,
        unsealed=facts.unsealed,
        missing=facts.missing,
    )


def _record_export(scope: ExportScope, file: ExportFile, actor: str | None, source: str | None) -> None:
    """Who exported which events: reading the trail out is itself an event of the trail."""
    context = current_change_actor()
    name, origin = actor or context.actor, source or context.source
    period = f"{canonical_time(scope.since)} to {canonical_time(scope.until)}"
    reason = f"audit export ({file.format}) of {period} by {name} ({origin}): {file.events} event(s)"
    record = event_record(
        kind=AuditEvent.Kind.ADMIN,
        reason=reason,
        tenant_id=scope.tenant_id,
        http_method="",
        path=f"{origin}: export audit",
        route=f"audit export {file.name}",
        details={
            "action": "export",
            "actor": name,
            "source": origin,
            "format": file.format,
            "since": canonical_time(scope.since),
            "until": canonical_time(scope.until),
            "events": file.events,
            "sha256": file.sha256,
        },
    )
    AuditEvent.objects.create(**sanitise_record(record))


def _validate(*, since: datetime, until: datetime, format: str) -> None:
    if format not in FORMATS:
        raise ValidationError({"format": f"must be one of {', '.join(FORMATS)}, got {format!r}"})
    if timezone.is_naive(since) or timezone.is_naive(until):
        raise ValidationError("since and until must carry a time zone")
    if since >= until:
        raise ValidationError({"until": "must be after since"})


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def _write_file(
    scope: ExportScope, format: str, path: Path, name: str, progress: Callable[[int], None]
) -> ExportFile:
    if format != "pdf":
        return write_events(scope=scope, format=format, path=path, name=name, progress=progress)
    summary = export_summary(scope)
    render_summary_pdf(summary, path, now=timezone.now())
    progress(summary.totals["events"])
    return ExportFile(
        name=name,
        format=format,
        sha256=sha256_of(path),
        size=path.stat().st_size,
        events=summary.totals["events"],
    )


# The admin's exports -----------------------------------------------------------------------------


def audit_export_request(
    *, tenant: Tenant, since: datetime, until: datetime, format: str, requested_by: str
) -> AuditExport:
    """Record an export to be made and queue it once the row is committed (see module doc)."""
    _validate(since=since, until=until, format=format)
    export = AuditExport.objects.create(
        tenant=tenant,
        requested_by=requested_by[:150],
        requested_at=timezone.now(),
        since=since,
        until=until,
        format=format,
    )
    transaction.on_commit(lambda: queue_export(export.pk))
    return export


def audit_export_retry(*, export: AuditExport, now: datetime) -> bool:
    """Queue a failed or stalled export (see ``AuditExport.is_stalled``) again; False for any other.

    The row is reset to pending only if it is still in the state it was seen in, so two retries of one
    export queue it once.
    """
    if export.state == AuditExport.State.FAILED:
        seen = Q(state=AuditExport.State.FAILED)
    elif export.is_stalled(now):
        seen = Q(state=AuditExport.State.RUNNING, updated_at=export.updated_at)
    else:
        return False
    reset = AuditExport.objects.filter(seen, pk=export.pk).update(
        state=AuditExport.State.PENDING, progress=0, events=0, error="", updated_at=now, finished_at=None
    )
    if reset:
        export_id = export.pk
        transaction.on_commit(lambda: queue_export(export_id))
    return bool(reset)


def exports_in_process() -> bool:
    """True in the embedded default: no Celery broker, so no worker; the gateway process runs exports."""
    return bool(getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False))


# In process, one export runs at a time, on a daemon thread of its own (never the audit writer's
# background thread): a shutdown does not wait for it; the export is then shown stalled and run again.
_one_at_a_time = threading.Semaphore(1)


def queue_export(export_id: int) -> None:
    """Hand the export to a Celery worker, or to a thread of this process."""
    if exports_in_process():
        name = f"audit-export-{export_id}"
        threading.Thread(target=_run_in_thread, args=(export_id,), name=name, daemon=True).start()
        return
    from gateway.celery import app

    app.send_task("audit.export", args=[export_id])  # audit/tasks.py


def _run_in_thread(export_id: int) -> None:
    with _one_at_a_time:
        try:
            audit_export_run(export_id=export_id)
        except Exception:
            logger.exception("audit export %s failed", export_id)
        finally:
            connections.close_all()


def export_file_path(export: AuditExport) -> Path:
    """Where an export's file is (or will be): under GATEWAY_EXPORT_DIR."""
    return Path(gateway_settings().export_dir) / export.file_name


def audit_export_run(*, export_id: int) -> AuditExport:
    """Write the export ``export_id`` (state pending): running with progress, then ready or failed.

    A failure is recorded on the row (its type and message, which never hold a secret: no secret is
    in the audit trail) and not raised.
    """
    export = AuditExport.objects.get(pk=export_id)
    file_name = f"audit-{export_id}-{export.requested_at:%Y%m%dT%H%M%S}.{export.format}"
    # Claimed by one runner only, even if the task is delivered twice.
    pending = AuditExport.objects.filter(pk=export_id, state=AuditExport.State.PENDING)
    if not pending.update(state=AuditExport.State.RUNNING, file_name=file_name, updated_at=timezone.now()):
        return export
    export.state, export.file_name = AuditExport.State.RUNNING, file_name
    tenant = Tenant.objects.filter(pk=export.tenant_id).first() if export.tenant_id else None
    try:
        if tenant is None:
            raise ValidationError("the tenant no longer exists")
        directory = Path(gateway_settings().export_dir)
        directory.mkdir(parents=True, exist_ok=True)
        with ProgressRecorder(export.pk) as recorder:
            result = audit_export_write(
                tenant=tenant,
                since=export.since,
                until=export.until,
                format=export.format,
                output=directory / export.file_name,
                progress=recorder.report,
                actor=export.requested_by,
                source="admin",
            )
    except Exception as error:
        message = "; ".join(error.messages) if isinstance(error, ValidationError) else str(error)
        failure = f"{type(error).__name__}: {message}"[:2000]
        _update(export, export_id, state=AuditExport.State.FAILED, error=failure)
        return export
    _update(
        export,
        export_id,
        state=AuditExport.State.READY,
        progress=100,
        events=result.events,
        size_bytes=result.bytes,
        sha256=result.sha256,
    )
    return export


def _update(export: AuditExport, export_id: int, **fields: Any) -> None:
    fields["updated_at"] = timezone.now()
    if fields.get("state") in (AuditExport.State.READY, AuditExport.State.FAILED):
        fields["finished_at"] = fields["updated_at"]
    for name, value in fields.items():
        setattr(export, name, value)
    AuditExport.objects.filter(pk=export_id).update(**fields)


class ProgressRecorder:
    """Saves an export's progress at most once per second, on a thread of its own: the export reads in
    one long snapshot transaction, whose writes no one else would see until it ends."""

    def __init__(self, export_id: int) -> None:
        self.export_id = export_id
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-export-progress")
        self._last = 0.0
        self._lock = threading.Lock()

    def __enter__(self) -> ProgressRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.submit(connections.close_all).result(timeout=30)
        self._thread.shutdown()

    def report(self, done: int, total: int) -> None:
        now = timezone.now().timestamp()
        with self._lock:
            if now - self._last < PROGRESS_INTERVAL_SECONDS and done < total:
                return
            self._last = now
        percent = min(99, done * 100 // total) if total else 0
        save = AuditExport.objects.filter(pk=self.export_id).update
        self._thread.submit(save, progress=percent, events=done, updated_at=timezone.now()).result(timeout=30)
