"""How an event becomes a line of an export file and back: the one encoding the writer and the verifier
share (see the package doc)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from audit.canonical import EVENT_FIELDS, canonical_event, canonical_time

FORMATS = ("csv", "jsonl", "pdf")
EVENT_FORMATS = ("csv", "jsonl")

#: Columns whose canonical value is text (never null); every other column is a number, JSON or null.
TEXT_COLUMNS = frozenset(
    {
        "event_id",
        "created_at",
        "request_id",
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
    }
)
#: Text columns that may also be null (an empty cell): the client address.
NULLABLE_TEXT_COLUMNS = frozenset({"client_ip"})
# What a spreadsheet would read as the start of a formula (OWASP "CSV injection"), and the guard itself.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")
_GUARD = "'"


def canonical_line(row: Mapping[str, Any]) -> bytes:
    """The JSON Lines line of an event row (a ``values()`` mapping): its canonical form and a newline."""
    return canonical_event(row) + b"\n"


def csv_cells(row: Mapping[str, Any]) -> list[str]:
    """The CSV cells of an event row, in :data:`EVENT_FIELDS` order."""
    return [_cell(name, row[name]) for name in EVENT_FIELDS]


def _cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name == "created_at" and isinstance(value, datetime):
        return canonical_time(value)
    if name in TEXT_COLUMNS or name in NULLABLE_TEXT_COLUMNS:
        text = str(value)
        return _GUARD + text if text.startswith(_FORMULA_STARTS) else text
    # Numbers and JSON exactly as the canonical form writes them (so the verifier reads the same value).
    return canonical_fragment(value)


def canonical_fragment(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # an integer beyond 64 bits: json writes its digits
        return json.dumps(value, sort_keys=True, separators=(",", ":"))


def row_from_csv(cells: Sequence[str]) -> dict[str, Any]:
    """The event row a CSV record stands for; ValueError when a cell is not what its column holds."""
    if len(cells) != len(EVENT_FIELDS):
        raise ValueError(f"{len(cells)} cells instead of {len(EVENT_FIELDS)}")
    row: dict[str, Any] = {}
    for name, cell in zip(EVENT_FIELDS, cells, strict=True):
        if name in TEXT_COLUMNS or (name in NULLABLE_TEXT_COLUMNS and cell):
            row[name] = cell[1:] if cell.startswith(_GUARD) else cell
        elif not cell:
            row[name] = None
        else:
            row[name] = json.loads(cell)  # json keeps integers of any size exact
    return _checked(row)


def row_from_line(line: bytes) -> dict[str, Any]:
    """The event row a JSON Lines line stands for (ValueError when it is not one)."""
    document = json.loads(line)
    if not isinstance(document, dict) or set(document) != set(EVENT_FIELDS):
        raise ValueError("not an audit event of the canonical form")
    return _checked(document)


def _checked(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its time parsed; ValueError when its id or time is not one."""
    if not isinstance(row["id"], int) or isinstance(row["id"], bool):
        raise ValueError("the id is not an integer")
    created_at = datetime.fromisoformat(str(row["created_at"]))
    if created_at.tzinfo is None:
        raise ValueError("the time has no time zone")
    row["created_at"] = created_at
    return row
