"""The audit event of a call is on disk before the message that completes its response is sent,
and each request is recorded exactly once, whether it completes, fails or is cut off."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from django.utils import timezone

from audit.sink import AuditSink
from dashboard.feed import FeedPublisher
from gateway.proxy.context import ProxyContext
from gateway.proxy.view import _send_stream, _send_whole


def context(sink: AuditSink, receive: Any = None) -> ProxyContext:
    async def never_disconnects() -> dict[str, Any]:
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    return ProxyContext(
        runtime=SimpleNamespace(audit=sink, feed=FeedPublisher()),  # type: ignore[arg-type]
        receive=receive or never_disconnects,
        method="POST",
        path="/mcp/docs/",
        query_string="",
        request_id="written-ahead",
        started_at=timezone.now(),
        status=200,
    )


def appended_lines(sink: AuditSink) -> int:
    return sum(path.read_bytes().count(b"\n") for path in sink.wal.directory.glob("*.wal"))


def test_a_whole_reply_is_on_disk_before_its_body_is_sent(tmp_path):
    sink = AuditSink(batch_size=10, wal_dir=str(tmp_path))
    sink.wal.open()
    on_disk_at: dict[str, int] = {}

    async def send(message: dict[str, Any]) -> None:
        on_disk_at[message["type"]] = appended_lines(sink)

    asyncio.run(_send_whole(context(sink), send, b'{"result": {}}'))
    assert on_disk_at == {"http.response.start": 0, "http.response.body": 1}
    assert appended_lines(sink) == 1


def test_a_stream_is_on_disk_before_its_final_message_is_sent(tmp_path):
    sink = AuditSink(batch_size=10, wal_dir=str(tmp_path))
    sink.wal.open()
    seen: list[tuple[bool, int]] = []

    async def stream() -> AsyncIterator[bytes]:
        yield b"data: 1\n\n"
        yield b"data: 2\n\n"

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            seen.append((message.get("more_body", False), appended_lines(sink)))

    asyncio.run(_send_stream(context(sink), send, stream()))
    assert seen == [(True, 0), (True, 0), (False, 1)]
    assert appended_lines(sink) == 1


@pytest.mark.parametrize("fails_at", ["http.response.start", "http.response.body"])
def test_a_reply_the_agent_never_got_is_recorded_once(tmp_path, fails_at):
    sink = AuditSink(batch_size=10, wal_dir=str(tmp_path))
    sink.wal.open()

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == fails_at:
            raise OSError("client went away")

    with pytest.raises(OSError):
        asyncio.run(_send_whole(context(sink), send, b"{}"))
    assert appended_lines(sink) == 1


def test_a_stream_cut_off_by_the_agent_is_recorded_once(tmp_path):
    sink = AuditSink(batch_size=10, wal_dir=str(tmp_path))
    sink.wal.open()
    disconnected = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"data: tick\n\n"
            disconnected.set()
            await asyncio.sleep(0.01)

    async def receive() -> dict[str, Any]:
        await disconnected.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        return None

    asyncio.run(_send_stream(context(sink, receive), send, endless()))
    assert appended_lines(sink) == 1
