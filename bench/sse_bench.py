"""What cutting event streams costs: hostile streams and the per-call overhead on the hot path.

Run by hand from the repository root::

    .venv/bin/python bench/sse_bench.py

Prints the CPU time (``time.process_time``, one process, no server) of:

- one 64 MB event with no blank line, in 64 KiB chunks (the hostile upstream of issue 7): cut with
  no size limit, and stopped by the default GATEWAY_MAX_EVENT_BYTES (8 MiB);
- 16 MB of tiny events (``data: x`` + blank line), the most events per byte, passed through a
  transform (what filter_listings and count_response_values do);
- the per-call overhead on a typical one-event tools/call reply: re-cutting it into whole events
  (what forward does to every event stream) and the response-header rules.
"""

from __future__ import annotations

import asyncio
import sys
import time
import timeit
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.proxy.errors import EventTooLarge
from gateway.proxy.sse import transform_events, whole_events
from gateway.proxy.upstream import agent_response_headers

MB = 1024 * 1024
PIECE = b"x" * (64 * 1024)
REPLY = (
    b'event: message\r\ndata: {"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text",'
    b'"text":"result for mcp"}],"isError":false}}\r\n\r\n'
)
HEADERS = {
    "date": "Thu, 26 Nov 2026 11:00:00 GMT",
    "server": "uvicorn",
    "cache-control": "no-cache, no-transform",
    "content-type": "text/event-stream",
    "mcp-session-id": "0f6e4a",
    "transfer-encoding": "chunked",
}


async def _source(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def _drain(stream: AsyncIterator[bytes]) -> str:
    size = 0
    try:
        async for piece in stream:
            size += len(piece)
    except EventTooLarge:
        return "ended: EventTooLarge"
    return f"{size} bytes out"


def _cpu(label: str, stream: AsyncIterator[bytes]) -> None:
    started = time.process_time()
    outcome = asyncio.run(_drain(stream))
    print(f"{label}: {(time.process_time() - started) * 1000:.0f} ms CPU ({outcome})")


def _per_call(label: str, function: object, number: int = 20_000) -> None:
    seconds = timeit.timeit(function, number=number)  # type: ignore[arg-type]
    print(f"{label}: {seconds / number * 1e6:.1f} µs per call")


async def _one_reply() -> None:
    async for _ in whole_events(_source([REPLY]), 8 * MB):
        pass


async def _one_reply_direct() -> None:
    async for _ in _source([REPLY]):
        pass


def main() -> None:
    huge = [b"data: ", *[PIECE] * 1024]
    _cpu("one 64 MB event, no limit", whole_events(_source(huge), 1 << 40))
    _cpu("one 64 MB event, 8 MiB limit", whole_events(_source(huge), 8 * MB))
    tiny = [b"data: x\n\n" * 6553] * 256
    _cpu("16 MB of tiny events through a transform", transform_events(_source(tiny), bytes, 8 * MB))
    loop = asyncio.new_event_loop()
    _per_call("a one-event reply relayed as is", lambda: loop.run_until_complete(_one_reply_direct()))
    _per_call("a one-event reply re-cut into whole events", lambda: loop.run_until_complete(_one_reply()))
    _per_call(
        "response-header rules",
        lambda: agent_response_headers(
            HEADERS, target_slug="docs", base_url="http://up/mcp", request_url="http://up/mcp"
        ),
    )
    loop.close()


if __name__ == "__main__":
    main()
