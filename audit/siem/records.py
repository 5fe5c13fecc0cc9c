"""What a SIEM sink receives for one audit event, in every transport.

A **record** is the event's canonical JSON (audit/canonical.py: every column but the seal link,
``event_id`` among them, so a receiver recognises a record delivered twice) with two keys added at
the end: ``tenant_name`` and ``target_name`` (the tenant's and the target's names now; null when
unknown). The canonical bytes are kept as they are, the names spliced in, so a big integer the
canonical form writes as digits stays exact.

A **syslog message** (RFC 5424) carries the record as its MSG: ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME
PROCID MSGID - BOM record``, where PRI is the sink's facility times 8 plus a severity from the
decision (allowed: 6 informational, denied: 4 warning, error: 3 error; a configuration change: 5
notice), TIMESTAMP the event's time (UTC, microseconds), MSGID the event's kind and PROCID the
delivering process. Framing on TCP is octet counting (RFC 6587): ``LENGTH SP MESSAGE``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from audit.canonical import canonical_event, canonical_time

_SEVERITY = {"allowed": 6, "denied": 4, "error": 3}
_NOTICE = 5
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class SiemRecord:
    """One event as delivered: its JSON bytes and what the syslog header needs."""

    event_id: int
    data: bytes
    created_at: str
    kind: str
    decision: str


def siem_record(row: Mapping[str, Any], *, tenant_name: str | None, target_name: str | None) -> SiemRecord:
    """The record of the event ``row`` (a ``values(*EVENT_FIELDS)`` row) with the names added."""
    canonical = canonical_event(row)
    names = orjson.dumps({"tenant_name": tenant_name, "target_name": target_name})
    return SiemRecord(
        event_id=row["id"],
        data=canonical[:-1] + b"," + names[1:],
        created_at=canonical_time(row["created_at"]),
        kind=row["kind"],
        decision=row["decision"],
    )


def _hostname() -> str:
    name = "".join(c for c in socket.gethostname() if 33 <= ord(c) <= 126)[:255]
    return name or "-"


_HOST = _hostname()


def syslog_frame(record: SiemRecord, *, facility: int, app_name: str) -> bytes:
    """The record as one RFC 5424 message, octet-count framed (RFC 6587)."""
    severity = _NOTICE if record.kind == "change" else _SEVERITY.get(record.decision, 3)
    kind = "".join(c for c in record.kind if 33 <= ord(c) <= 126)[:32] or "-"
    header = f"<{facility * 8 + severity}>1 {record.created_at} {_HOST} {app_name} {os.getpid()} {kind} - "
    message = header.encode() + _BOM + record.data
    return f"{len(message)} ".encode() + message


def webhook_body(records: list[SiemRecord]) -> bytes:
    """The JSON body of one webhook delivery: ``{"events": [record, ...]}``."""
    return b'{"events":[' + b",".join(record.data for record in records) + b"]}"
