"""Writing audit records to the database: idempotent, fast, and never stopped by one bad row.

Rows go in with ``INSERT ... ON CONFLICT (event_id) DO NOTHING`` (PostgreSQL: COPY into a temporary
table, then one ``INSERT ... SELECT``; SQLite: multi-row ``INSERT``), so an event written twice (a
segment drained again after a crash) is stored once.
Every record is sanitised first (:mod:`audit.records`). If the database still refuses a batch with a
data error, the batch is split in halves until the refused row is alone; that row is written with
the refused column replaced and the reason noted (``audit: <column> unwritable``), so it is neither
dropped nor retried forever. An unavailable database (``OperationalError``, ``InterfaceError``)
propagates: the caller keeps the events on disk and retries later.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from typing import Any

import orjson
from django.db import DataError, IntegrityError, connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from audit.records import AuditRecord, replacement_for, sanitise_record, sanitise_text

logger = logging.getLogger(__name__)

# What the database (or the driver adapting a value) says about a row it cannot store.
ROW_ERRORS = (DataError, IntegrityError, ValueError, OverflowError, TypeError)
_KEPT_COLUMNS = ("event_id", "created_at")
_INCOMING = "audit_incoming"  # the per-connection temporary table COPY fills (PostgreSQL)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


@dataclass
class WriteReport:
    """What one write did: rows inserted, duplicates ignored, rows stored repaired."""

    inserted: int = 0
    duplicates: int = 0
    repaired: int = 0


def write_records(records: list[AuditRecord]) -> WriteReport:
    """Sanitise ``records`` and insert them as AuditEvent rows, each event id at most once.

    Raises OperationalError or InterfaceError when the database is unavailable (nothing is lost:
    the caller still holds the records). Rows the database refuses are repaired (see module doc).
    """
    from audit.models import AuditEvent

    connection = connections[router.db_for_write(AuditEvent)]
    statement = _Statement(connection)
    report = WriteReport()
    _write_isolating(statement, [statement.row(sanitise_record(record)) for record in records], report)
    return report


class _Statement:
    """The INSERT for AuditEvent on one connection, in chunks that respect the parameter limit."""

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        from audit.models import AuditEvent

        self.connection = connection
        self.fields = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]
        quote = connection.ops.quote_name
        self.columns = [f.attname for f in self.fields]
        self.table = quote(AuditEvent._meta.db_table)
        self.head = (
            f"INSERT INTO {self.table} "  # noqa: S608
            f"({', '.join(quote(f.column) for f in self.fields if f.column)}) VALUES "
        )
        self.tail = f" ON CONFLICT ({quote('event_id')}) DO NOTHING"
        self.placeholders = "(" + ", ".join(["%s"] * len(self.fields)) + ")"
        self.rows_per_statement = max(1, _parameter_limit(connection) // len(self.fields))

    def row(self, record: AuditRecord) -> AuditRecord:
        """``record`` with every column present (a column it lacks takes the model default)."""
        return {f.attname: record[f.attname] if f.attname in record else f.get_default() for f in self.fields}

    def insert(self, rows: list[AuditRecord]) -> int:
        """Insert ``rows`` in one transaction; return how many were new."""
        if self.connection.vendor == "postgresql" and not self.connection.in_atomic_block:
            return self._copy(rows)
        return self._insert_values(rows)

    def _copy(self, rows: list[AuditRecord]) -> int:
        """PostgreSQL: COPY into a temporary table, then one INSERT ... SELECT ... ON CONFLICT.

        COPY adapts and sends rows in psycopg's C code: about three times cheaper in CPU per event
        than a multi-row INSERT, whose thousands of placeholders psycopg parses in Python.
        """
        from psycopg.types.json import Jsonb

        connection = self.connection
        quote = connection.ops.quote_name
        columns = ", ".join(quote(f.column) for f in self.fields if f.column)
        json_columns = {f.attname for f in self.fields if f.get_internal_type() == "JSONField"}
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            # Column types and lengths as the table's, and no constraint (the id is not copied).
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {_INCOMING} ON COMMIT DELETE ROWS "  # noqa: S608
                f"AS SELECT {columns} FROM {self.table} WITH NO DATA"
            )
            with (
                connection.wrap_database_errors,
                cursor.cursor.copy(f"COPY {_INCOMING} ({columns}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(
                        [
                            Jsonb(row[c], dumps=_json_dumps) if c in json_columns else row[c]
                            for c in self.columns
                        ]
                    )
            cursor.execute(
                f"INSERT INTO {self.table} ({columns}) SELECT {columns} FROM {_INCOMING}"  # noqa: S608
                f"{self.tail}"
            )
            inserted: int = max(cursor.rowcount, 0)
            return inserted

    def _insert_values(self, rows: list[AuditRecord]) -> int:
        connection = self.connection
        inserted = 0
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            for start in range(0, len(rows), self.rows_per_statement):
                chunk = rows[start : start + self.rows_per_statement]
                params: list[Any] = []
                for row in chunk:
                    params.extend(f.get_db_prep_save(row[f.attname], connection) for f in self.fields)
                sql = self.head + ", ".join([self.placeholders] * len(chunk)) + self.tail
                cursor.execute(sql, params)
                inserted += max(cursor.rowcount, 0)
        return inserted


def _parameter_limit(connection: BaseDatabaseWrapper) -> int:
    if connection.vendor == "sqlite":
        # Django states SQLite's old limit (999); SQLite 3.32+ takes 32766.
        return 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999
    return min(connection.features.max_query_params or 65535, 65535)


def _write_isolating(statement: _Statement, rows: list[AuditRecord], report: WriteReport) -> None:
    if not rows:
        return
    try:
        inserted = statement.insert(rows)
    except ROW_ERRORS as exc:
        if len(rows) == 1:
            _write_repaired(statement, rows[0], exc, report)
            return
        middle = len(rows) // 2
        _write_isolating(statement, rows[:middle], report)
        _write_isolating(statement, rows[middle:], report)
        return
    report.inserted += inserted
    report.duplicates += len(rows) - inserted


def _write_repaired(statement: _Statement, row: AuditRecord, error: Exception, report: WriteReport) -> None:
    """Write a row the database refused, with the column at fault replaced and the reason noted."""
    cause = type(error).__name__
    columns = [c for c in statement.columns if c not in _KEPT_COLUMNS]
    for column in columns:
        note = f"audit: {column} unwritable ({cause})"
        candidate = {**row, column: replacement_for(column)}
        candidate["reason"] = _noted(note, "" if column == "reason" else row["reason"])
        if _try_insert(statement, candidate, report):
            logger.warning("audit event %s stored with %s replaced: %s", row["event_id"], column, cause)
            return
    # Several columns at fault: keep only what the gateway itself made.
    candidate = {c: row[c] if c in _KEPT_COLUMNS else replacement_for(c) for c in statement.columns}
    candidate["reason"] = _noted(f"audit: row unwritable ({cause}); every field replaced", "")
    if _try_insert(statement, candidate, report, last_attempt=True):
        logger.warning("audit event %s stored with every field replaced: %s", row["event_id"], cause)


def _try_insert(
    statement: _Statement, row: AuditRecord, report: WriteReport, last_attempt: bool = False
) -> bool:
    """Insert one row; False when the database refuses it. A row made only of the gateway's own
    values that is still refused means the statement, not the row, is at fault: that error is
    raised (the caller keeps the events and retries), so no event is dropped over a bug."""
    try:
        inserted = statement.insert([row])
    except ROW_ERRORS:
        if last_attempt:
            raise
        return False
    report.repaired += inserted
    report.duplicates += 1 - inserted
    return True


def _noted(note: str, reason: str) -> str:
    return sanitise_text(f"{note}; {reason}" if reason else note, 500)
