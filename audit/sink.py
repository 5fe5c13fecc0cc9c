"""The durable, non-blocking audit writer.

The proxy hands each finished request's record to :meth:`AuditSink.submit`, which never waits on
the database. A background task writes records in batches (``bulk_create``); if the database
cannot take them, they are appended to a spool file and written when it can, so an accepted call's
audit event is not lost to a database outage.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from django.db import connections, router, transaction

from gateway.background import run_in_background_thread

logger = logging.getLogger(__name__)

AuditRecord = dict[str, Any]


def write_records(records: list[AuditRecord]) -> None:
    """Insert records as AuditEvent rows with one prepared statement (``executemany``).

    ``bulk_create`` spent most of the audit writer's time compiling one giant INSERT per batch;
    here the statement is built once and only the values are prepared per row. Fields a record
    leaves out take the model default.
    """
    from audit.models import AuditEvent

    fields = [field for field in AuditEvent._meta.concrete_fields if not field.primary_key]
    connection = connections[router.db_for_write(AuditEvent)]
    columns = ", ".join(connection.ops.quote_name(field.column or field.attname) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    rows = [
        [
            field.get_db_prep_save(
                record[field.attname] if field.attname in record else field.get_default(), connection
            )
            for field in fields
        ]
        for record in records
    ]
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", rows)  # noqa: S608


class AuditSink:
    """Queue of audit records and the task that writes them."""

    def __init__(self, *, batch_size: int, spool_dir: str, linger_seconds: float = 0.05) -> None:
        self.batch_size = batch_size
        self.linger_seconds = linger_seconds
        self.spool_dir = Path(spool_dir)
        self._queue: asyncio.Queue[AuditRecord] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="audit-writer")

    def submit(self, record: AuditRecord) -> None:
        """Queue one record; never blocks."""
        self._queue.put_nowait(record)

    async def flush(self) -> None:
        """Wait until every queued record is written (or spooled)."""
        await self._queue.join()

    async def aclose(self) -> None:
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            # Linger briefly so one INSERT carries many events: the write, not the event, costs.
            deadline = loop.time() + self.linger_seconds
            while len(batch) < self.batch_size:
                try:
                    batch.append(self._queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            try:
                await self._write(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, batch: list[AuditRecord]) -> None:
        try:
            await run_in_background_thread(write_records, batch)
        except Exception as exc:
            logger.error(
                "audit database write failed, spooling %d event(s): %s", len(batch), type(exc).__name__
            )
            await run_in_background_thread(self._spool, batch)
            return
        if self.spool_dir.exists():
            await run_in_background_thread(self.drain_spool)

    def _spool(self, batch: list[AuditRecord]) -> None:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        path = self.spool_dir / f"{uuid.uuid4().hex}.jsonl"
        with open(path, "wb") as handle:
            for record in batch:
                handle.write(orjson.dumps(record) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())

    def drain_spool(self) -> int:
        """Write spooled records to the database; return how many were written."""
        written = 0
        for path in sorted(self.spool_dir.glob("*.jsonl")):
            records = [_revive(orjson.loads(line)) for line in path.read_bytes().splitlines() if line]
            write_records(records)
            path.unlink()
            written += len(records)
        return written


def _revive(record: AuditRecord) -> AuditRecord:
    record["created_at"] = datetime.fromisoformat(record["created_at"])
    return record
