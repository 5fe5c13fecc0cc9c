"""Event-by-event transformation of ``text/event-stream`` bodies.

Events are cut at their blank-line boundary (LF, CRLF or CR line endings), handed to a transform
one at a time and written on at once: a stream is never buffered whole.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable

_BOUNDARY = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_LINE = re.compile(rb"\r\n|\n|\r")

EventTransform = Callable[[bytes], bytes]


async def transform_events(chunks: AsyncIterator[bytes], transform: EventTransform) -> AsyncIterator[bytes]:
    """Yield ``chunks`` re-cut into whole events, each passed through ``transform``."""
    pending = b""
    async for chunk in chunks:
        pending += chunk
        start = 0
        out: list[bytes] = []
        for boundary in _BOUNDARY.finditer(pending):
            event = pending[start : boundary.start()]
            out.append(transform(event) + boundary.group())
            start = boundary.end()
        pending = pending[start:]
        if out:
            yield b"".join(out)
    if pending:
        yield transform(pending)


def event_data(event: bytes) -> bytes | None:
    """The joined ``data:`` lines of one event, or None when it has none."""
    data: list[bytes] = []
    for line in _LINE.split(event):
        if line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(b" ") else value)
    return b"\n".join(data) if data else None


def replace_event_data(event: bytes, data: bytes) -> bytes:
    """The same event with its data lines replaced by one line holding ``data``."""
    newline = b"\r\n" if b"\r\n" in event else b"\n"
    kept = [line for line in _LINE.split(event) if not line.startswith(b"data:")]
    return newline.join([*kept, b"data: " + data])
