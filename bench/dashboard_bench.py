"""How long the dashboard takes to render with 100,000 audit events in its period.

Run by hand from the repository root::

    .venv/bin/python bench/dashboard_bench.py [--events 100000] [--noise 100000] [--runs 5]

On the database of ``DATABASE_URL`` (PostgreSQL in production; the benchmark creates and drops a
database of its own there; without it a throw-away SQLite file), it stores ``--events`` proxied
calls of one tenant in the last 55 minutes (so the last hour, the last 24 hours and the last 7 days
each hold all of them: 20 tools, 12 agents, 3 targets, 4 % denied, 1 % rate-limited, 2 % redacted,
log-normal latencies) and ``--noise`` calls of another tenant spread over 7 days, then renders the
tenant's dashboard for each period through Django's test client as a logged-in tenant admin, and
prints the median and worst wall time of ``--runs`` renders and the number of SQL queries per page.
The requirement is a page in under 1 s.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from throwaway_database import throwaway_database  # noqa: E402


def fill(target_id: int, tenant_id: int, slugs: list[str], count: int, span: timedelta) -> None:
    """Store ``count`` calls of ``tenant_id`` spread over the last ``span`` (batches of 5,000)."""
    from django.utils import timezone

    from audit.models import AuditEvent

    rng = random.Random(tenant_id)
    now = timezone.now()
    redacted = {
        "filters": [],
        "redactions": [{"policy": 1, "mode": "enforce", "action": "mask", "kinds": {}}],
    }
    batch: list[AuditEvent] = []
    for index in range(count):
        roll = rng.random()
        decision, status = (
            ("denied", 403) if roll < 0.04 else ("denied", 429) if roll < 0.05 else ("allowed", 200)
        )
        batch.append(
            AuditEvent(
                created_at=now - span * rng.random(),
                request_id=f"{index:032x}",
                tenant_id=tenant_id,
                target_id=target_id,
                target_slug=rng.choice(slugs),
                credential_name=f"agent-{rng.randrange(12)}",
                http_method="POST",
                path="/mcp/docs/",
                route="POST /tools/search",
                jsonrpc_method="tools/call",
                tool=f"tool-{int(rng.paretovariate(1.2)) % 20}",
                decision=decision,
                reason="no rule allows POST /tools/x" if decision == "denied" else "",
                status_code=status,
                upstream_status=status if decision == "allowed" else None,
                latency_ms=rng.lognormvariate(2.5, 0.6),
                protections=redacted if rng.random() < 0.02 else {},
            )
        )
        if len(batch) == 5000:
            AuditEvent.objects.bulk_create(batch)
            batch = []
    AuditEvent.objects.bulk_create(batch)


def measure(events: int, noise: int, runs: int) -> None:
    with throwaway_database("dashboard") as connection:
        from django.test import Client
        from django.test.utils import CaptureQueriesContext, setup_test_environment

        from gateway.services import target_create, tenant_create, user_create
        from metering.services import meter_create

        setup_test_environment()
        acme, globex = tenant_create(name="acme"), tenant_create(name="globex")
        slugs = ["docs", "tickets", "billing"]
        targets = [target_create(tenant=acme, slug=s, upstream_url="http://127.0.0.1:9/mcp") for s in slugs]
        other = target_create(tenant=globex, slug="other", upstream_url="http://127.0.0.1:9/mcp")
        for limit in (100, 1000, 50_000):
            meter_create(tenant=acme, target=targets[0], kind="request_count", window="hour", limit=limit)
        started = time.perf_counter()
        fill(targets[0].pk, acme.pk, slugs, events, timedelta(minutes=55))
        fill(other.pk, globex.pk, ["other"], noise, timedelta(days=7))
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # fresh statistics, as autovacuum would have made
        print(
            f"{connection.vendor}: stored {events:,} + {noise:,} events in {time.perf_counter() - started:.1f} s"
        )
        client = Client()
        client.force_login(user_create(username="alice", tenant=acme, role="admin", password="").user)
        url = f"/dashboard/{acme.pk}/"
        for period in ("1h", "24h", "7d"):
            client.get(url, {"period": period})  # warm: session, templates
            times = []
            for _ in range(runs):
                with CaptureQueriesContext(connection) as queries:
                    began = time.perf_counter()
                    response = client.get(url, {"period": period})
                    times.append(time.perf_counter() - began)
                assert response.status_code == 200, response.status_code
            if os.environ.get("BENCH_QUERIES"):
                for query in queries.captured_queries:
                    print(f"    {float(query['time']) * 1000:6.0f} ms  {query['sql'][:150]}")
            print(
                f"  period {period:>3}: median {statistics.median(times) * 1000:6.0f} ms, "
                f"worst {max(times) * 1000:6.0f} ms, {len(queries)} queries, {events:,} events in the period"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--noise", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    os.environ["REDIS_URL"] = ""  # meters' use then reads "kept in the gateway process": no Redis needed
    measure(args.events, args.noise, args.runs)


if __name__ == "__main__":
    main()
