"""The audit write-ahead file: where an event is kept from its response until the database has it.

Each gateway process appends to one live *segment* in ``GATEWAY_AUDIT_WAL_DIR``: one JSON line per
event, one ``os.write`` to an ``O_APPEND`` file, no fsync per call. The write is in the kernel's
page cache when it returns, so it survives the process being killed; a group fsync on a timer
(``GATEWAY_AUDIT_FSYNC_SECONDS``) bounds what a machine crash can lose. A segment is rotated when it
passes :data:`SEGMENT_BYTES`, and deleted once drained into the database.

Several processes may share the directory. A process holds an exclusive ``flock`` on every segment
it owns until it deletes it, so a segment whose lock can be taken belongs to a dead process: any
process may then *adopt* it (taking the lock) and drain it. A dead process's last line may be cut
short (the kill hit mid-write, so that response never completed): it is skipped and logged. A line
that is not valid JSON is moved to a quarantine file (temp file + rename, named after the segment
and offset, so a second pass writes the same file) and never read again.

Appends run on the event loop; reads, fsyncs and deletions run on a background thread. The segment
list is shared under a lock held only while it changes.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

SEGMENT_BYTES = 8 * 1024 * 1024
SUFFIX = ".wal"
# Spool files of the gateway before the write-ahead log (complete JSON lines, never locked).
LEGACY_SPOOL_PATTERN = "*.jsonl"
QUARANTINE = "quarantine"
_READ_CHUNK = 256 * 1024


@dataclass(eq=False)
class Segment:
    """One segment file, open and locked by this process. ``offset`` is how far it is drained."""

    path: Path
    fd: int
    own: bool  # appended to by this process (else adopted from a dead one)
    sealed: bool = False  # nothing more will be appended
    offset: int = 0

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class Batch:
    """Lines read from one segment, and where the drain stands once they are stored."""

    segment: Segment
    lines: list[bytes]
    end: int  # the segment offset after these lines
    corrupt: list[tuple[int, bytes]]  # (offset, line) of lines that are not valid JSON records
    truncated: int = 0  # bytes of a dead process's cut-short last line, skipped


class WriteAheadLog:
    """This process's segments in one directory (see module doc)."""

    def __init__(self, directory: str | Path, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._segments: list[Segment] = []
        self._live: Segment | None = None
        self._live_size = 0
        self.unsynced = False
        self._directory_unsynced = False

    def open(self) -> None:
        """Create the directory and this process's live segment (fails at start-up if it cannot)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._rotate()

    def append(self, line: bytes) -> None:
        """Append one newline-terminated line with one ``os.write``. Raises OSError (disk full ...)."""
        live = self._live
        if live is None:
            raise OSError("audit write-ahead log is closed")
        written = os.write(live.fd, line)
        while written < len(line):  # only on a short write (a signal, a nearly full disk)
            written += os.write(live.fd, line[written:])
        self._live_size += written
        self.unsynced = True
        if self._live_size >= self.segment_bytes:
            try:
                self._rotate()
            except OSError as exc:  # keep appending to this segment; try again at the next append
                logger.error("audit write-ahead segment not rotated: %s", exc)

    def _rotate(self) -> None:
        name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        path = self.directory / name
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        segment = Segment(path=path, fd=fd, own=True)
        with self._lock:
            if self._live is not None:
                self._live.sealed = True
            self._segments.append(segment)
            self._live, self._live_size = segment, 0
        self._directory_unsynced = True

    @property
    def needs_sync(self) -> bool:
        """Something was appended (or a segment created) since the last :meth:`sync`."""
        return self.unsynced or self._directory_unsynced

    def sync(self) -> None:
        """fsync the live segment (and the directory after a new segment): the group fsync."""
        live = self._live
        if live is not None and self.unsynced:
            self.unsynced = False
            try:
                os.fsync(live.fd)
            except OSError as exc:  # the segment was drained and closed meanwhile: nothing to keep
                logger.debug("audit segment fsync skipped: %s", exc)
        if self._directory_unsynced:
            self._directory_unsynced = False
            dir_fd = os.open(self.directory, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def segments(self) -> list[Segment]:
        """Every segment this process holds, sealed ones first (oldest first), adopted ones after."""
        with self._lock:
            return sorted(self._segments, key=lambda s: (not s.own, not s.sealed, s.name))

    def adopt_dead_segments(self) -> int:
        """Lock and take over every segment in the directory whose owner is gone; return how many."""
        with self._lock:
            held = {s.path for s in self._segments}
        adopted = 0
        found = [*self.directory.glob(f"*{SUFFIX}"), *self.directory.glob(LEGACY_SPOOL_PATTERN)]
        for path in sorted(found):
            if path in held:
                continue
            segment = _try_adopt(path)
            if segment is not None:
                with self._lock:
                    self._segments.append(segment)
                adopted += 1
        return adopted

    def read(self, segment: Segment, max_lines: int) -> Batch:
        """Up to ``max_lines`` complete lines of ``segment`` from its drain offset (nothing is consumed)."""
        data = _read_lines(segment.fd, segment.offset, max_lines)
        lines = data.split(b"\n")
        tail = lines.pop()  # after the last newline: empty, or a line still being written
        lines = lines[:max_lines]
        end = segment.offset + sum(len(line) + 1 for line in lines)
        truncated = 0
        if tail and len(lines) < max_lines and segment.sealed and not segment.own:
            truncated = len(tail)  # a dead process's cut-short last line: its response never completed
        return Batch(segment=segment, lines=lines, end=end, corrupt=[], truncated=truncated)

    def consume(self, batch: Batch) -> None:
        """Mark ``batch`` as stored; a fully drained sealed segment is deleted and unlocked."""
        segment = batch.segment
        segment.offset = batch.end + batch.truncated
        if batch.truncated:
            logger.warning(
                "audit: skipped a cut-short last line (%d bytes) of dead process segment %s",
                batch.truncated,
                segment.name,
            )
        if segment.sealed and segment.offset >= os.fstat(segment.fd).st_size:
            self._remove(segment)

    def quarantine(self, segment: Segment, corrupt: list[tuple[int, bytes]]) -> Path:
        """Move lines that are not valid records to ``quarantine/<segment>-<offset>.jsonl`` atomically."""
        folder = self.directory / QUARANTINE
        folder.mkdir(exist_ok=True)
        final = folder / f"{segment.path.stem}-{corrupt[0][0]}.jsonl"
        temporary = folder / f".{final.name}.{uuid.uuid4().hex}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(b"".join(line + b"\n" for _, line in corrupt))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
        logger.error(
            "audit: %d unreadable line(s) of segment %s moved to %s", len(corrupt), segment.name, final
        )
        return final

    def backlog_bytes(self) -> int:
        """Bytes held in this process's segments that are not yet in the database."""
        total = 0
        for segment in self.segments():
            try:
                total += max(os.fstat(segment.fd).st_size - segment.offset, 0)
            except OSError:
                pass
        return total

    def close(self) -> None:
        """Seal the live segment, delete drained segments, unlock the rest for the next process."""
        with self._lock:
            if self._live is not None:
                self._live.sealed = True
            self._live = None
            segments = list(self._segments)
        for segment in segments:
            if segment.offset >= os.fstat(segment.fd).st_size:
                self._remove(segment)
            else:
                with self._lock:
                    self._segments.remove(segment)
                os.close(segment.fd)

    def _remove(self, segment: Segment) -> None:
        # Unlink while still locked, so no other process adopts a segment that is being deleted.
        segment.path.unlink(missing_ok=True)
        with self._lock:
            self._segments.remove(segment)
        os.close(segment.fd)


def _try_adopt(path: Path) -> Segment | None:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return None  # drained and deleted by its owner meanwhile
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Still the same file: its previous holder may have deleted it between our listing and lock.
        if os.stat(path).st_ino != os.fstat(fd).st_ino:
            raise FileNotFoundError(path)
    except (BlockingIOError, FileNotFoundError):
        os.close(fd)
        return None  # a live process holds it, or it is gone
    logger.info("audit: draining segment %s left by a process that stopped", path.name)
    return Segment(path=path, fd=fd, own=False, sealed=True)


def _read_lines(fd: int, offset: int, max_lines: int) -> bytes:
    """Bytes from ``offset`` holding at least ``max_lines`` lines, or up to the end of the file."""
    size = _READ_CHUNK
    while True:
        data = os.pread(fd, size, offset)
        if len(data) < size or data.count(b"\n") >= max_lines:
            return data
        size *= 2
