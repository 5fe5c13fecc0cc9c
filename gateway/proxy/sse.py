"""Event-by-event handling of ``text/event-stream`` bodies, in linear time and bounded memory.

An event ends at a blank line: a line ending (CR LF, LF or CR) directly followed by another. The
:class:`EventCutter` finds those boundaries scanning each byte a bounded number of times (it keeps
its scan position between chunks, and a boundary may straddle chunks, CR LF included), and keeps
at most one event in memory: an event larger than ``max_event_bytes`` raises
:class:`~gateway.proxy.errors.EventTooLarge`. A stream is never buffered whole.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable

from gateway.proxy.errors import EventTooLarge

# A line ending followed by a line ending. A lone CR must not be the first half of a CR LF.
_BOUNDARY = re.compile(rb"(?:\r\n|\n|\r(?!\n))(?:\r\n|\n|\r(?!\n))")
_LINE = re.compile(rb"\r\n|\n|\r")
_CR = 0x0D
# The longest boundary is CR LF CR LF: after a fruitless scan, only the last 3 bytes may still
# start one.
_BOUNDARY_TAIL = 3

EventTransform = Callable[[bytes], bytes]
AsyncEventTransform = Callable[[bytes], Awaitable[bytes]]


class EventCutter:
    """Cuts a byte stream into whole events, chunk by chunk.

    ``feed`` returns the bytes of the events a chunk completed (with their blank-line
    terminators) and the offsets of each terminator in them; ``rest`` is the unterminated event
    left when the stream ends.
    """

    __slots__ = ("_buffer", "_max", "_scan")

    def __init__(self, max_event_bytes: int) -> None:
        self._buffer = bytearray()
        self._scan = 0  # where the search for the next boundary resumes
        self._max = max_event_bytes

    def feed(self, chunk: bytes) -> tuple[bytes, list[tuple[int, int]]]:
        """The whole events ``chunk`` completed, and their terminators as (start, end) offsets."""
        buffer = self._buffer
        buffer += chunk
        cut = 0
        boundaries: list[tuple[int, int]] = []
        size = len(buffer)
        for match in _BOUNDARY.finditer(buffer, self._scan):
            start, end = match.span()
            if end == size and buffer[-1] == _CR:  # the CR may be half of a CR LF: wait
                self._scan = start
                break
            if start - cut > self._max:
                raise self._too_large()
            boundaries.append((start, end))
            cut = end
        else:
            self._scan = max(cut, size - _BOUNDARY_TAIL)
            if self._scan > cut and buffer[self._scan - 1] == _CR:  # resume on the CR of a CR LF
                self._scan -= 1
        if size - cut - _BOUNDARY_TAIL > self._max:
            raise self._too_large()
        if not cut:
            return b"", boundaries
        with memoryview(buffer) as view:
            events = bytes(view[:cut])
        del buffer[:cut]
        self._scan -= cut
        return events, boundaries

    def rest(self) -> bytes:
        """The unterminated event left at the end of the stream (empty when there is none)."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        self._scan = 0
        return rest

    def _too_large(self) -> EventTooLarge:
        return EventTooLarge(f"An upstream event exceeds GATEWAY_MAX_EVENT_BYTES ({self._max} bytes)")


async def whole_events(chunks: AsyncIterator[bytes], max_event_bytes: int) -> AsyncGenerator[bytes, None]:
    """``chunks`` re-cut so that each piece holds whole events; an unterminated last event is
    yielded at the end. Raises EventTooLarge, and ends without the partial event, when one event
    passes ``max_event_bytes``; an error raised by ``chunks`` likewise drops the partial event.
    """
    cutter = EventCutter(max_event_bytes)
    try:
        async for chunk in chunks:
            events, _ = cutter.feed(chunk)
            if events:
                yield events
    finally:
        await _close(chunks)
    rest = cutter.rest()
    if rest:
        yield rest


async def transform_events(
    chunks: AsyncIterator[bytes], transform: EventTransform, max_event_bytes: int
) -> AsyncGenerator[bytes, None]:
    """Yield ``chunks`` re-cut into whole events, each passed through ``transform``.

    The bytes between events (the blank-line terminators) are kept as they were. An unterminated
    last event is transformed too. Raises EventTooLarge like :func:`whole_events`.
    """
    cutter = EventCutter(max_event_bytes)
    try:
        async for chunk in chunks:
            events, boundaries = cutter.feed(chunk)
            if events:
                yield _transform_all(events, boundaries, transform)
    finally:
        await _close(chunks)
    rest = cutter.rest()
    if rest:
        yield transform(rest)


async def transform_events_async(
    chunks: AsyncIterator[bytes], transform: AsyncEventTransform, max_event_bytes: int
) -> AsyncGenerator[bytes, None]:
    """:func:`transform_events` for a transform that must await (e.g. a database write) before it
    can say what an event becomes. Events stay in order; each is released once transformed.
    """
    cutter = EventCutter(max_event_bytes)
    try:
        async for chunk in chunks:
            events, boundaries = cutter.feed(chunk)
            start = 0
            for end_of_event, end in boundaries:
                yield await transform(events[start:end_of_event]) + events[end_of_event:end]
                start = end
    finally:
        await _close(chunks)
    rest = cutter.rest()
    if rest:
        yield await transform(rest)


async def _close(chunks: AsyncIterator[bytes]) -> None:
    """Close the source as soon as its reader is done with it, so an upstream body is released."""
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()


def _transform_all(events: bytes, boundaries: list[tuple[int, int]], transform: EventTransform) -> bytes:
    out: list[bytes] = []
    start = 0
    for end_of_event, end in boundaries:
        out.append(transform(events[start:end_of_event]))
        out.append(events[end_of_event:end])
        start = end
    return b"".join(out)


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
