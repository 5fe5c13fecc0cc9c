"""Shared bits of the audit tests: a minimal record, a sink run on its own event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from django.utils import timezone

from audit.models import AuditEvent
from audit.sink import AuditSink

T = TypeVar("T")


def record(request_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "created_at": timezone.now(),
        "request_id": request_id,
        "http_method": "POST",
        "path": "/mcp/docs/",
        "decision": "allowed",
        "status_code": 200,
        "latency_ms": 1.0,
        **fields,
    }


def new_sink(wal_dir: Path, **options: Any) -> AuditSink:
    return AuditSink(batch_size=options.pop("batch_size", 100), wal_dir=str(wal_dir), **options)


def with_sink(wal_dir: Path, scenario: Callable[[AuditSink], Awaitable[T]], **options: Any) -> T:
    """Start a sink on a fresh event loop, run ``scenario`` with it, close it (bounded drain)."""

    drain_seconds = options.pop("drain_seconds", 5.0)

    async def main() -> T:
        sink = new_sink(wal_dir, **options)
        sink.start()
        try:
            return await scenario(sink)
        finally:
            await sink.aclose(drain_seconds=drain_seconds)

    return asyncio.run(main())


def request_ids() -> list[str]:
    return sorted(AuditEvent.objects.exclude(kind="change").values_list("request_id", flat=True))


def wal_lines(wal_dir: Path) -> int:
    return sum(path.read_bytes().count(b"\n") for path in wal_dir.glob("*.wal"))


async def eventually(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll ``condition`` until it holds (generous deadline: the machine may be loaded)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
