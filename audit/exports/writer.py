"""Writing an export file as the events are read: a page at a time, hashed on the way out."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import IO

from audit.canonical import EVENT_FIELDS
from audit.exports.events import iter_event_pages
from audit.exports.formats import canonical_line, csv_cells
from audit.exports.manifest import ExportFile, ExportScope

#: Called after each page with the number of events written so far.
Progress = Callable[[int], None]


class HashingWriter:
    """A binary file that keeps the SHA-256 and size of what was written to it."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._out.write(data)
        self.digest.update(data)
        self.size += len(data)


def write_events(*, scope: ExportScope, format: str, path: Path, name: str, progress: Progress) -> ExportFile:
    """Write the scope's events to ``path`` as ``format`` (csv or jsonl); constant memory."""
    with path.open("wb") as raw:
        out = HashingWriter(raw)
        text = io.StringIO()
        table = csv.writer(text)
        if format == "csv":
            table.writerow(EVENT_FIELDS)
        written = 0
        pages = iter_event_pages(tenant_id=scope.tenant_id, since=scope.since, until=scope.until)
        for page in pages:
            if format == "csv":
                table.writerows(csv_cells(row) for row in page)
                out.write(text.getvalue().encode())
                text.seek(0)
                text.truncate()
            else:
                out.write(b"".join(canonical_line(row) for row in page))
            written += len(page)
            progress(written)
        if format == "csv" and not written:
            out.write(text.getvalue().encode())
    return ExportFile(name=name, format=format, sha256=out.digest.hexdigest(), size=out.size, events=written)
