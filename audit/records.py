"""Audit records: the plain dicts the proxy appends to the write-ahead file, and the one routine
that makes a record safe for every database backend before it is inserted.

Most values of a record come from the request (path, ids, sizes, the client's address), so none is
trusted: :func:`sanitise_record` removes NUL from every string (JSON values too: PostgreSQL refuses
it in ``text`` and ``jsonb``), replaces what UTF-8 cannot encode, truncates text to its column with
a visible marker, clamps numbers to their column's range and validates the IP address. A value of
the wrong type takes the column's default. The result holds exactly the columns of
:class:`~audit.models.AuditEvent` (its event id included) as Python values ready to adapt.
"""

from __future__ import annotations

import ipaddress
import math
import uuid
from datetime import UTC, datetime
from typing import Any

AuditRecord = dict[str, Any]

TRUNCATED = "…[truncated]"
BIGINT_MAX = 2**63 - 1
SMALLINT_MAX = 32767
# Bounds for JSON values: deeper or longer values are cut with a marker.
_JSON_MAX_DEPTH = 16
_JSON_MAX_ITEMS = 1000
_JSON_MAX_STRING = 2000

TEXT_COLUMNS: dict[str, int] = {
    "request_id": 100,
    "credential_name": 200,
    "credential_prefix": 16,
    "target_slug": 100,
    "http_method": 10,
    "path": 2000,
    "route": 2000,
    "jsonrpc_method": 200,
    "tool": 500,
    "jsonrpc_id": 200,
    "session_id": 300,
    "reason": 500,
}
BIGINT_COLUMNS = ("request_bytes", "response_bytes")
ID_COLUMNS = ("tenant_id", "target_id", "credential_id")
DECISIONS = frozenset({"allowed", "denied", "error"})
#: What an event records: a proxied call, a tool definition first seen, changed or approved, or an
#: admin action or a configuration change (see :class:`~audit.models.AuditEvent.Kind`).
KINDS = frozenset({"call", "tool_new", "tool_changed", "tool_approved", "admin", "change"})


def sanitise_text(raw: Any, limit: int) -> str:
    """``raw`` as text without NUL or unencodable characters, at most ``limit`` characters."""
    value: str = raw if isinstance(raw, str) else "" if raw is None else str(raw)
    if "\x00" in value:
        value = value.replace("\x00", "")
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")
    if len(value) > limit:
        # A column too narrow for the marker (the HTTP method's) is cut without one.
        value = value[: limit - len(TRUNCATED)] + TRUNCATED if limit > 2 * len(TRUNCATED) else value[:limit]
    return value


def clamp_int(value: Any, low: int, high: int, default: int | None = 0) -> int | None:
    """``value`` as an int within ``[low, high]``; ``default`` when it is not a number at all."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    if isinstance(value, float):
        if math.isnan(value):
            return default
        number = int(value) if math.isfinite(value) else (high if value > 0 else low)
    else:
        number = value
    return min(max(number, low), high)


def sanitise_ip(value: Any) -> str | None:
    """A valid IPv4 or IPv6 address (zone id dropped), else None."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return str(ipaddress.ip_address(value.split("%", 1)[0]))
    except ValueError:
        return None


def sanitise_json(value: Any, depth: int = 0) -> Any:
    """``value`` made JSON-safe for every backend: str keys, no NUL, finite bounded numbers, bounded size."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return sanitise_text(value, _JSON_MAX_STRING)
    if isinstance(value, int):
        return value if -BIGINT_MAX <= value <= BIGINT_MAX else float(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth >= _JSON_MAX_DEPTH:
        return TRUNCATED
    if isinstance(value, dict):
        items = list(value.items())[:_JSON_MAX_ITEMS]
        return {sanitise_text(key, _JSON_MAX_STRING): sanitise_json(item, depth + 1) for key, item in items}
    if isinstance(value, list | tuple):
        return [sanitise_json(item, depth + 1) for item in value[:_JSON_MAX_ITEMS]]
    return sanitise_text(value, _JSON_MAX_STRING)


def sanitise_created_at(value: Any) -> datetime:
    """An aware datetime; an ISO string (as read back from the write-ahead file) is parsed."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            value = None
    if not isinstance(value, datetime):
        return datetime.now(UTC)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def sanitise_event_id(value: Any) -> uuid.UUID:
    """The record's event id; a missing or malformed one gets a fresh id (logged by the caller)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return uuid.uuid4()


def event_record(*, kind: str, reason: str, **columns: Any) -> AuditRecord:
    """A record of an event that is not a proxied call (a tool definition seen or approved, a
    configuration change, an admin action): made now, with a fresh request id, no latency, status 0
    and decision ``allowed`` unless ``columns`` say otherwise."""
    return {
        "created_at": datetime.now(UTC),
        "request_id": uuid.uuid4().hex,
        "kind": kind,
        "reason": reason,
        "decision": "allowed",
        "status_code": 0,
        "latency_ms": 0.0,
        **columns,
    }


def sanitise_record(record: AuditRecord) -> AuditRecord:
    """Every column of an AuditEvent row, each value made safe for its column (see module doc)."""
    safe: AuditRecord = {
        "event_id": sanitise_event_id(record.get("event_id")),
        "created_at": sanitise_created_at(record.get("created_at")),
    }
    for column, limit in TEXT_COLUMNS.items():
        safe[column] = sanitise_text(record.get(column), limit)
    for column in ID_COLUMNS:
        safe[column] = clamp_int(record.get(column), 1, BIGINT_MAX, default=None)
    for column in BIGINT_COLUMNS:
        safe[column] = clamp_int(record.get(column), 0, BIGINT_MAX)
    decision = record.get("decision")
    safe["decision"] = decision if decision in DECISIONS else "error"
    kind = record.get("kind", "call")
    safe["kind"] = kind if kind in KINDS else "call"
    safe["status_code"] = clamp_int(record.get("status_code"), 0, SMALLINT_MAX)
    safe["upstream_status"] = clamp_int(record.get("upstream_status"), 0, SMALLINT_MAX, default=None)
    latency = record.get("latency_ms")
    safe["latency_ms"] = (
        min(max(float(latency), 0.0), 1e12)
        if isinstance(latency, int | float) and not isinstance(latency, bool) and math.isfinite(latency)
        else 0.0
    )
    safe["client_ip"] = sanitise_ip(record.get("client_ip"))
    notes = record.get("meter_notes")
    safe["meter_notes"] = sanitise_json(notes) if isinstance(notes, list) else []
    values = record.get("response_values")
    safe["response_values"] = sanitise_json(values) if isinstance(values, dict) else {}
    protections = record.get("protections")
    safe["protections"] = sanitise_json(protections) if isinstance(protections, dict) else {}
    details = record.get("details")
    safe["details"] = sanitise_json(details) if isinstance(details, dict) else {}
    return safe


# What replaces a column the database still refuses after sanitising (see audit.writer).
def replacement_for(column: str) -> Any:
    """The safe stand-in for ``column``: empty text, zero, None or an empty JSON value."""
    if column in TEXT_COLUMNS:
        return ""
    if column in ID_COLUMNS or column in ("upstream_status", "client_ip"):
        return None
    if column == "meter_notes":
        return []
    if column in ("response_values", "protections", "details"):
        return {}
    if column == "decision":
        return "error"
    if column == "kind":
        return "call"
    if column == "latency_ms":
        return 0.0
    return 0
