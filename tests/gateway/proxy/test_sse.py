"""Event streams stay streams: events are cut and transformed one by one, bytes kept otherwise, in
linear time and with at most one event in memory."""

import asyncio
import random

import pytest

from gateway.proxy import sse
from gateway.proxy.errors import EventTooLarge
from gateway.proxy.sse import EventCutter, event_data, replace_event_data, transform_events, whole_events

LIMIT = 1024 * 1024


async def _source(chunks):
    for chunk in chunks:
        yield chunk


async def _collect(chunks, transform, limit=LIMIT):
    return [piece async for piece in transform_events(_source(chunks), transform, limit)]


def _events(chunks, limit=LIMIT):
    """The events the transform saw, in order."""
    seen = []

    def record(event):
        seen.append(event)
        return event

    out = asyncio.run(_collect(chunks, record, limit))
    return seen, b"".join(out)


def test_events_split_across_chunks_are_reassembled_and_emitted_as_soon_as_whole():
    chunks = [b'event: message\r\ndata: {"a"', b": 1}\r\n\r\ndata: 2\r", b"\n\r\n"]
    out = asyncio.run(_collect(chunks, lambda event: event.upper()))
    assert out == [b'EVENT: MESSAGE\r\nDATA: {"A": 1}\r\n\r\n', b"DATA: 2\r\n\r\n"]


def test_untouched_events_keep_their_exact_bytes():
    chunks = [b": ping\n\n", b"id: 7\ndata: x\n\n"]
    assert b"".join(asyncio.run(_collect(chunks, lambda event: event))) == b"".join(chunks)


def test_event_data_joins_data_lines_and_replacement_keeps_other_fields():
    event = b'event: message\r\nid: 3\r\ndata: {"x":\r\ndata: 1}'
    assert event_data(event) == b'{"x":\n1}'
    assert replace_event_data(event, b"{}") == b"event: message\r\nid: 3\r\ndata: {}"


def test_a_cr_lf_split_across_chunks_is_one_line_ending_not_a_blank_line():
    seen, _ = _events([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"])
    assert seen == [b"data: a\r\ndata: b"]


def test_mixed_line_endings_end_events_where_the_event_stream_format_says():
    seen, out = _events([b"data: a\n\r\ndata: b\r\r\ndata: c\r\n\n"])
    assert [event_data(e) for e in seen] == [b"a", b"b", b"c"]
    assert out == b"data: a\n\r\ndata: b\r\r\ndata: c\r\n\n"


def _dispatched(stream: bytes) -> list[bytes]:
    """The data an event-stream client dispatches, parsed line by line as the format specifies."""
    lines, start, i = [], 0, 0
    while i < len(stream):
        if stream[i : i + 2] == b"\r\n":
            lines.append(stream[start:i])
            i += 2
            start = i
        elif stream[i : i + 1] in (b"\r", b"\n"):
            lines.append(stream[start:i])
            i += 1
            start = i
        else:
            i += 1
    dispatched, data = [], []
    for line in lines:
        if not line:
            if data:
                dispatched.append(b"\n".join(data))
            data = []
        elif line.startswith(b"data:"):
            data.append(line[6:] if line.startswith(b"data: ") else line[5:])
    return dispatched


@pytest.mark.parametrize("seed", range(40))
def test_any_cut_of_a_stream_into_chunks_yields_the_events_a_client_would_see(seed):
    rng = random.Random(seed)
    tokens = [b"data: a", b"data: bb", b"id: 1", b": c", b"\r", b"\n", b"\r\n", b"\r\n"]
    stream = b"".join(rng.choice(tokens) for _ in range(300)) + b"\n\n"
    cuts = sorted(rng.sample(range(1, len(stream)), min(60, len(stream) - 1)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]

    seen, out = _events(chunks)

    assert out == stream
    assert [d for d in map(event_data, seen) if d is not None] == _dispatched(stream)
    assert _events([stream])[0] == seen


def test_an_event_larger_than_the_limit_ends_the_stream_without_its_partial_bytes():
    async def run():
        out = []
        with pytest.raises(EventTooLarge, match="GATEWAY_MAX_EVENT_BYTES"):
            async for piece in whole_events(_source([b"data: ok\n\n"] + [b"x" * 4096] * 100), 64 * 1024):
                out.append(piece)
        return out

    assert asyncio.run(run()) == [b"data: ok\n\n"]


def test_memory_stays_bounded_by_the_largest_event():
    cutter = EventCutter(64 * 1024)
    with pytest.raises(EventTooLarge):
        for _ in range(10_000):
            cutter.feed(b"data: " + b"y" * 4090)
            assert len(cutter._buffer) <= 64 * 1024 + 4096


def test_a_big_event_in_small_chunks_is_scanned_in_linear_time(monkeypatch):
    scanned = 0
    boundary = sse._BOUNDARY

    class CountingPattern:
        def finditer(self, buffer, pos):
            nonlocal scanned
            scanned += len(buffer) - pos  # at most: the scan stops at the end of the buffer
            return boundary.finditer(buffer, pos)

    monkeypatch.setattr(sse, "_BOUNDARY", CountingPattern())
    chunks = [b"data: " + b"z" * 1000 + b"\r"] * 2000 + [b"\n\r\n"]  # one 2 MB event, 2000 lines

    seen, _ = _events(chunks, limit=4 * 1024 * 1024)

    assert len(seen) == 1
    total = sum(map(len, chunks))
    assert scanned < 2 * total  # a rescan from the start of the event on each chunk would be ~1000x
