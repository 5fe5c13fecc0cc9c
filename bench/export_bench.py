"""What an audit export costs: rows per second and Python's peak memory, for CSV and JSON Lines.

Run by hand from the repository root::

    .venv/bin/python bench/export_bench.py [--rows 100000] [--postgres postgres://postgres@127.0.0.1/postgres]

In a fresh process on a throw-away database (PostgreSQL when ``--postgres`` or a PostgreSQL
``DATABASE_URL`` is given, else SQLite): writes ``--rows`` events of one tenant (tests/audit/bulk_events.py),
seals them as the sealer would, then exports the period as CSV and as JSON Lines, printing for each the
rows per second (wall clock, manifest included), the file's size and the peak of Python's allocations
(``tracemalloc``, which slows the run: the rate is measured in a second, untraced run).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from throwaway_database import throwaway_database  # noqa: E402

START = datetime(2026, 5, 1, tzinfo=UTC)


def measure(rows: int) -> None:
    """In this process (Django set up on DATABASE_URL): create a database, measure, drop it."""
    with throwaway_database("export") as connection:
        run(rows, connection.vendor)


def run(rows: int, vendor: str) -> None:
    from audit.exports.services import audit_export_write
    from audit.services import audit_seal_run
    from gateway.services import tenant_create
    from tests.audit.bulk_events import bulk_events

    tenant = tenant_create(name="bench")
    started = time.monotonic()
    bulk_events(tenant_id=tenant.id, count=rows, start=START)
    audit_seal_run(max_events=10_000)
    print(f"{vendor}: {rows} events written and sealed in {time.monotonic() - started:.1f} s")
    with tempfile.TemporaryDirectory() as directory:
        for fmt in ("csv", "jsonl"):
            output = Path(directory) / f"bench.{fmt}"
            options = {"tenant": tenant, "since": START, "until": START + timedelta(days=1), "format": fmt}
            started = time.monotonic()
            audit_export_write(**options, output=output)
            seconds = time.monotonic() - started
            tracemalloc.start()
            audit_export_write(**options, output=output)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            size = output.stat().st_size
            print(
                f"{vendor} {fmt:5}: {rows / seconds:,.0f} rows/s ({seconds:.1f} s), file {size / 1e6:.1f} MB, "
                f"manifest {Path(str(output) + '.manifest.json').stat().st_size / 1e6:.1f} MB, "
                f"peak Python memory {peak / 1e6:.1f} MB"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--postgres", default="", help="PostgreSQL server URL (a database is created there)")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.rows)
        return
    url = args.postgres or os.environ.get("DATABASE_URL", "")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "REDIS_URL": ""}
    env["DATABASE_URL"] = (
        url if url.startswith("postgres") else f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"
    )
    command = [sys.executable, __file__, "--measure", "--rows", str(args.rows)]
    subprocess.run(command, env=env, cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
