"""File delivery: JSON Lines appended to a file inside ``GATEWAY_SIEM_FILE_DIR`` for a log shipper.

One record per line (audit/siem/records.py). A batch is appended with ``O_APPEND`` (the file is
never followed through a symbolic link) and, with ``fsync: batch``, synced before the cursor moves;
a batch that fails half-way is cut back off the file, so a line is never left half-written. With
``max_bytes``, a file that would grow past it is first rotated like logrotate's numbered scheme
(``name`` -> ``name.1`` -> ``name.2`` ..., ``backups`` kept).
"""

from __future__ import annotations

import os
from pathlib import Path

from audit.siem.config import FileConfig
from audit.siem.records import SiemRecord
from audit.siem.transport import DeliveryError, describe

_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


def append_jsonl(config: FileConfig, records: list[SiemRecord]) -> None:
    """Append ``records`` to the sink's file, one JSON object per line; DeliveryError on failure."""
    data = b"".join(record.data + b"\n" for record in records)
    try:
        config.path.parent.mkdir(parents=True, exist_ok=True)
        if config.max_bytes and _size(config.path) and _size(config.path) + len(data) > config.max_bytes:
            _rotate(config.path, config.backups)
        _append(config.path, data, fsync=config.fsync)
    except OSError as exc:
        raise DeliveryError(f"file {config.path.name}: {describe(exc)}") from None


def _append(path: Path, data: bytes, *, fsync: bool) -> None:
    fd = os.open(path, _FLAGS, 0o640)
    try:
        start = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if fsync:
                os.fsync(fd)
        except OSError:
            os.ftruncate(fd, start)
            raise
    finally:
        os.close(fd)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _rotate(path: Path, backups: int) -> None:
    """``path.N-1`` -> ``path.N`` ... ``path`` -> ``path.1``; the oldest beyond ``backups`` is dropped."""
    for number in range(backups - 1, 0, -1):
        older = path.with_name(f"{path.name}.{number}")
        if older.exists():
            os.replace(older, path.with_name(f"{path.name}.{number + 1}"))
    os.replace(path, path.with_name(f"{path.name}.1"))
