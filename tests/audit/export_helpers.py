"""Shared bits of the export tests: events at chosen times, sealed in chosen batches, and the commands."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.core.management import call_command

from audit.models import AuditEvent, AuditExport
from audit.services import audit_chain_seal
from audit.signing import public_keys
from audit.writer import write_records
from tests.audit.helpers import record
from tests.commands import run_verdict

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
END = START + timedelta(hours=1)


def write_events_at(tenant_id: int, minutes: list[float], **fields: Any) -> list[int]:
    """One event per entry of ``minutes`` (minutes after START), in that order; their ids."""
    records = [
        record(
            f"req-{uuid.uuid4().hex[:8]}",
            event_id=uuid.uuid4().hex,
            tenant_id=tenant_id,
            created_at=START + timedelta(minutes=minute),
            tool=fields.get("tool", "search"),
            **{k: v for k, v in fields.items() if k != "tool"},
        )
        for minute in minutes
    ]
    write_records(records)
    return list(AuditEvent.objects.order_by("-id").values_list("id", flat=True)[: len(records)])[::-1]


def seal(tenant_id: int) -> None:
    assert audit_chain_seal(tenant_id=tenant_id, max_events=100_000) is not None


def export_requested(tenant: Any, **fields: Any) -> AuditExport:
    """An export of ``tenant``'s events from START to END as the admin would have saved it (CSV,
    asked for by "reviewer", waiting to run); ``fields`` set the rest (state, progress ...)."""
    defaults: dict[str, Any] = {
        "requested_by": "reviewer",
        "requested_at": START,
        "since": START,
        "until": END,
        "format": "csv",
    }
    return AuditExport.objects.create(tenant=tenant, **{**defaults, **fields})


def export(
    tenant_name: str, path: Path, fmt: str, since: datetime = START, until: datetime = END
) -> dict[str, Any]:
    out = io.StringIO()
    call_command(
        "export_audit",
        "--tenant",
        tenant_name,
        "--since",
        since.isoformat(),
        "--until",
        until.isoformat(),
        "--format",
        fmt,
        "--output",
        str(path),
        "--json",
        stdout=out,
    )
    return json.loads(out.getvalue())


def public_key_file(directory: Path) -> Path:
    """The gateway's signing public key, as an auditor would save it (raw, base64url)."""
    path = directory / "audit-key.pub"
    path.write_text(str(public_keys()[0]["public_key"]) + "\n")
    return path


def verify(path: Path, key: Path, *extra: str) -> tuple[bool, dict[str, Any]]:
    """Run verify_export with only the public key; (passed, its JSON report)."""
    return run_verdict("verify_export", str(path), "--public-key", str(key), *extra)


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)
