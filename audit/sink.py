"""The audit sink: every proxied call's event on disk before its response completes, and a
supervised writer that drains the disk into the database.

:meth:`AuditSink.submit` gives the record an event id and appends it to the write-ahead file
(:mod:`audit.wal`): one ``os.write``, no database, no queue in memory. The writer task reads the
files in batches on the background thread and stores them (:mod:`audit.writer`), idempotently by
event id; it also adopts the segments of processes that died. The lag (events on disk, not yet in
the database) lives on disk; memory holds only counters. When the database is unavailable the
writer retries with backoff; any other failure is logged and the writer restarts. Shutdown drains
for at most :data:`SHUTDOWN_DRAIN_SECONDS`; what is left stays on disk for the next start.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

import orjson
from django.db import InterfaceError, OperationalError

from audit import writer
from audit.records import AuditRecord, sanitise_json
from audit.wal import Batch, WriteAheadLog
from gateway.background import run_in_background_thread

logger = logging.getLogger(__name__)

__all__ = ["AuditRecord", "AuditSink"]

SHUTDOWN_DRAIN_SECONDS = 5.0
ADOPT_EVERY_SECONDS = 5.0
_IDLE_WAIT_SECONDS = 1.0
_MAX_BACKOFF_SECONDS = 30.0
_UNAVAILABLE = (OperationalError, InterfaceError)
_LEGACY_NAMESPACE = uuid.UUID("9f1c7a52-4a35-4c8e-9d5e-3b0f6f0b7a10")
# The lag in seconds is read from marks (event number, time appended) taken at most this often, so it
# overstates the oldest waiting event's age by at most this much. The cap keeps memory bounded in a
# long database outage (past it, about 2.7 hours of marks, the oldest marks are dropped).
LAG_MARK_SECONDS = 0.1
_MAX_LAG_MARKS = 100_000


@dataclass
class _Pass:
    """What one drain step did."""

    own_lines: int = 0
    more: bool = False


class AuditSink:
    """This process's write-ahead log and the task that drains it into the database."""

    def __init__(
        self,
        *,
        batch_size: int,
        wal_dir: str,
        linger_seconds: float = 0.05,
        fsync_seconds: float = 1.0,
        lag_warn_events: int = 10_000,
        segment_bytes: int | None = None,
    ) -> None:
        self.batch_size = batch_size
        self.linger_seconds = linger_seconds
        self.fsync_seconds = fsync_seconds
        self.lag_warn_events = lag_warn_events
        self.wal = WriteAheadLog(wal_dir, **({"segment_bytes": segment_bytes} if segment_bytes else {}))
        self._appended = 0  # events this process appended
        self._lag_marks: deque[tuple[int, float]] = deque(maxlen=_MAX_LAG_MARKS)
        self._last_mark = float("-inf")
        self._drained = 0  # of those, events the writer is done with (stored, or quarantined)
        self._counters = {"stored": 0, "duplicates": 0, "repaired": 0, "quarantined": 0, "truncated": 0}
        self._append_failures = 0
        self._restarts = 0
        self._database_ok = True
        self._lag_warned = False
        self._urgent = False
        self._closing = False
        self._turn = 0
        self._adopt_scans = 0
        self._adopt_requested = False
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- the hot path -----------------------------------------------------------------------------

    def submit(self, record: AuditRecord) -> None:
        """Append one record to the write-ahead file (one ``os.write``); never waits on the database."""
        record["event_id"] = uuid.uuid4().hex
        try:
            line = orjson.dumps(record)
        except TypeError:  # a value JSON cannot hold (an integer past 64 bits ...): make it safe
            line = orjson.dumps(sanitise_json(record))
        try:
            self.wal.append(line + b"\n")
        except OSError as exc:
            self._append_failures += 1
            logger.error("audit event %s not written ahead: %s", record["event_id"], exc)
            return
        now = time.monotonic()
        if now - self._last_mark >= LAG_MARK_SECONDS:
            self._last_mark = now
            self._lag_marks.append((self._appended, now))  # event number self._appended, appended now
        self._appended += 1
        if self._appended - self._drained > self.lag_warn_events:
            self._check_lag()
        if self._wake is not None and not self._wake.is_set():
            self._wake.set()

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Open this process's live segment and start the writer and the group fsync."""
        self.wal.open()
        self._wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._supervise(), name="audit-writer"),
            loop.create_task(self._group_fsync(), name="audit-fsync"),
        ]

    async def flush(self) -> None:
        """Wait until every event appended so far (and every adopted segment) is in the database."""
        target = self._appended
        scans = self._adopt_scans
        self._adopt_requested = True  # segments of dead processes count too: look for them now
        while (
            self._drained < target
            or self._adopt_scans == scans
            or any(not s.own for s in self.wal.segments())
        ):
            self._urgent = True
            if self._wake is not None:
                self._wake.set()
            await asyncio.sleep(0.01)

    async def aclose(self, drain_seconds: float = SHUTDOWN_DRAIN_SECONDS) -> None:
        """Drain for at most ``drain_seconds``, stop the tasks and release the segments; never hangs."""
        self._closing = True
        try:
            await asyncio.wait_for(self.flush(), drain_seconds)
        except TimeoutError:
            logger.warning(
                "audit: %d event(s) not yet in the database at shutdown stay in %s for the next start",
                self._appended - self._drained,
                self.wal.directory,
            )
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        # The background thread may still be finishing a batch: release the files after it.
        try:
            await asyncio.wait_for(run_in_background_thread(self.wal.close), drain_seconds)
        except TimeoutError:
            logger.warning("audit: background thread busy at shutdown; segments released at exit")

    def lag(self) -> tuple[int, float]:
        """Events of this process not yet in the database, and the oldest one's age in seconds (at
        most :data:`LAG_MARK_SECONDS` too old; 0 when none waits)."""
        waiting = self._appended - self._drained
        marks = self._lag_marks
        # Drop the marks of drained events, keeping the last one at or before the oldest waiting event.
        while len(marks) > 1 and marks[1][0] <= self._drained:
            marks.popleft()
        if waiting <= 0 or not marks:
            return max(waiting, 0), 0.0
        return waiting, max(time.monotonic() - marks[0][1], 0.0)

    def status(self) -> dict[str, Any]:
        """Counters for ``/readyz`` details: the lag and what the writer has had to do."""
        return {
            "lag_events": self._appended - self._drained,
            "backlog_bytes": self.wal.backlog_bytes(),
            "database": "ok" if self._database_ok else "unavailable",
            "appended": self._appended,
            "append_failures": self._append_failures,
            "writer_restarts": self._restarts,
            **self._counters,
        }

    # -- the writer -------------------------------------------------------------------------------

    async def _supervise(self) -> None:
        """Run the writer; on an unexpected failure log it and restart it with backoff."""
        backoff = 0.1
        while True:
            started = time.monotonic()
            try:
                await self._drain_forever()
            except asyncio.CancelledError:
                raise
            except Exception:
                if time.monotonic() - started > _MAX_BACKOFF_SECONDS * 2:
                    backoff = 0.1  # it had been running well: a new failure, not the same one again
                self._restarts += 1
                logger.exception("audit writer failed; restarting in %.1f s", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)

    async def _drain_forever(self) -> None:
        backoff = 0.1
        next_adopt = 0.0
        while True:
            if time.monotonic() >= next_adopt or self._adopt_requested:
                self._adopt_requested = False
                await run_in_background_thread(self.wal.adopt_dead_segments)
                self._adopt_scans += 1
                next_adopt = time.monotonic() + ADOPT_EVERY_SECONDS
            try:
                step = await run_in_background_thread(self._drain_step)
            except _UNAVAILABLE as exc:
                self._set_database_ok(False, exc)
                self._check_lag()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
                continue
            backoff = 0.1
            self._set_database_ok(True)
            self._drained += step.own_lines
            self._check_lag()
            if step.more:
                continue
            await self._wait_for_events()

    async def _wait_for_events(self) -> None:
        wake = self._wake
        if wake is None:
            raise RuntimeError("AuditSink.start() has not run")
        self._urgent = False
        wake.clear()
        try:
            await asyncio.wait_for(wake.wait(), _IDLE_WAIT_SECONDS)
        except TimeoutError:
            return
        # Linger so one INSERT carries many events: the write, not the event, costs.
        if not self._urgent and not self._closing:
            await asyncio.sleep(self.linger_seconds)

    def _drain_step(self) -> _Pass:
        """On the background thread: store one batch from the first segment with unread lines."""
        step = _Pass()
        segments = self.wal.segments()
        # Start one further each time, so a busy live segment cannot starve a dead process's.
        self._turn = (self._turn + 1) % max(len(segments), 1)
        for segment in segments[self._turn :] + segments[: self._turn]:
            batch = self.wal.read(segment, self.batch_size)
            if not batch.lines and not batch.truncated:
                if segment.sealed:
                    self.wal.consume(batch)  # drained to the end: delete it
                continue
            self._store(batch)
            step.own_lines = len(batch.lines) if segment.own else 0
            step.more = True
            return step
        return step

    def _store(self, batch: Batch) -> None:
        records: list[AuditRecord] = []
        for offset, line in _lines_with_offsets(batch):
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                record = None
            if isinstance(record, dict):
                # A line without an event id (an old spool file) gets one derived from its bytes,
                # so draining it twice still stores it once.
                if "event_id" not in record:
                    record["event_id"] = uuid.uuid5(_LEGACY_NAMESPACE, line.decode("utf-8", "replace")).hex
                records.append(record)
            else:
                batch.corrupt.append((offset, line))
        report = writer.write_records(records) if records else writer.WriteReport()
        if batch.corrupt:
            self.wal.quarantine(batch.segment, batch.corrupt)
        self.wal.consume(batch)
        counters = self._counters
        counters["stored"] += report.inserted + report.repaired
        counters["duplicates"] += report.duplicates
        counters["repaired"] += report.repaired
        counters["quarantined"] += len(batch.corrupt)
        counters["truncated"] += 1 if batch.truncated else 0

    async def _group_fsync(self) -> None:
        """fsync the live segment every ``fsync_seconds`` when something was appended."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.fsync_seconds)
            if self.wal.needs_sync:
                try:
                    await loop.run_in_executor(None, self.wal.sync)
                except OSError as exc:
                    logger.error("audit write-ahead fsync failed: %s", exc)

    # -- reporting --------------------------------------------------------------------------------

    def _set_database_ok(self, ok: bool, error: Exception | None = None) -> None:
        if ok == self._database_ok:
            return
        self._database_ok = ok
        if ok:
            logger.warning("audit database available again; draining the write-ahead file")
        else:
            logger.warning(
                "audit database unavailable (%s); events wait in %s", type(error).__name__, self.wal.directory
            )

    def _check_lag(self) -> None:
        lag = self._appended - self._drained
        if lag > self.lag_warn_events and not self._lag_warned:
            self._lag_warned = True
            logger.warning("audit lag: %d event(s) on disk not yet in the database", lag)
        elif lag <= self.lag_warn_events // 2 and self._lag_warned:
            self._lag_warned = False
            logger.warning("audit lag recovered: %d event(s) on disk not yet in the database", lag)


def _lines_with_offsets(batch: Batch) -> list[tuple[int, bytes]]:
    offset = batch.segment.offset
    result = []
    for line in batch.lines:
        result.append((offset, line))
        offset += len(line) + 1
    return result
