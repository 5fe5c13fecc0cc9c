"""Event streams stay streams: events are cut and transformed one by one, bytes kept otherwise."""

import asyncio

from gateway.proxy.sse import event_data, replace_event_data, transform_events


async def _collect(chunks, transform):
    async def source():
        for chunk in chunks:
            yield chunk

    return [piece async for piece in transform_events(source(), transform)]


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
