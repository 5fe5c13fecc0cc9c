"""What the write-ahead audit costs: the per-call append (CPU), and how fast the writer drains.

Run by hand from the repository root::

    .venv/bin/python bench/audit_bench.py [--events 20000] [--postgres postgres://postgres@127.0.0.1/postgres]

For each database (a throw-away SQLite file, and PostgreSQL when ``--postgres`` or a PostgreSQL
``DATABASE_URL`` is given: the benchmark creates and drops a database of its own there), in a fresh
process:

1. appends ``--events`` typical audit records through ``AuditSink.submit`` (event id, JSON, one
   ``os.write``) and prints the CPU time per append (user + system, ``time.process_time``);
2. starts a writer on those segments (as after a crash: nothing drained yet) and prints the events
   per second it stores (wall clock, until every event is in the database) and its CPU per event.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from throwaway_database import throwaway_database  # noqa: E402


def typical_record(index: int) -> dict[str, object]:
    """What ``build_audit_record`` makes of an allowed ``tools/call`` (field sizes as in real calls)."""
    from django.utils import timezone

    return {
        "created_at": timezone.now(),
        "request_id": f"{index:032x}",
        "tenant_id": 1,
        "target_id": 1,
        "credential_id": 1,
        "credential_name": "ci-agent",
        "credential_prefix": "gw_3f9a1c2b",
        "target_slug": "docs",
        "http_method": "POST",
        "path": "/mcp/docs/",
        "route": "POST /tools/search",
        "jsonrpc_method": "tools/call",
        "tool": "search",
        "jsonrpc_id": str(index),
        "session_id": "",
        "decision": "allowed",
        "reason": "",
        "status_code": 200,
        "upstream_status": 200,
        "latency_ms": 4.21,
        "request_bytes": 187,
        "response_bytes": 312,
        "client_ip": "127.0.0.1",
        "meter_notes": [],
        "response_values": {},
    }


def measure(events: int, batch_size: int) -> None:
    """In this process (Django set up on DATABASE_URL): create a database, measure, drop it."""
    with throwaway_database("audit") as connection:
        from audit.models import AuditEvent
        from audit.sink import AuditSink
        from gateway.background import close_background_connections

        wal_dir = tempfile.mkdtemp(prefix="audit-bench-")
        appender = AuditSink(batch_size=batch_size, wal_dir=wal_dir, lag_warn_events=10**8)
        appender.wal.open()
        records = [typical_record(index) for index in range(events)]
        started = time.process_time()
        for record in records:
            appender.submit(record)
        append_ms = (time.process_time() - started) * 1000 / events
        appender.wal.close()

        async def drain() -> tuple[float, float]:
            writer = AuditSink(batch_size=batch_size, wal_dir=wal_dir, linger_seconds=0.0)
            wall, cpu = time.perf_counter(), time.process_time()
            writer.start()
            await writer.flush()
            elapsed, cpu_used = time.perf_counter() - wall, time.process_time() - cpu
            await writer.aclose()
            return elapsed, cpu_used

        elapsed, cpu_used = asyncio.run(drain())
        stored = AuditEvent.objects.count()
        close_background_connections()
        vendor = connection.vendor
        print(
            f"{vendor:10} append {append_ms:.4f} ms CPU/event | writer {stored / elapsed:,.0f} events/s, "
            f"{cpu_used * 1000 / stored:.3f} ms CPU/event ({stored} events, batches of {batch_size})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--postgres", default="")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measure(args.events, args.batch_size)
        return
    postgres = args.postgres or os.environ.get("DATABASE_URL", "")
    urls = [f"sqlite:///{tempfile.mkdtemp()}/unused.sqlite3"]
    if postgres.startswith("postgres"):
        urls.append(postgres)
    for url in urls:
        env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tests.settings", "REDIS_URL": ""}
        command = [sys.executable, __file__, "--child", "--events", str(args.events)]
        subprocess.run([*command, "--batch-size", str(args.batch_size)], env=env, cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
