"""What the admin's audit list costs on a trail of 1,000,000 events, filter by filter, with the plans.

Run by hand from the repository root, against PostgreSQL::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/audit_query_bench.py [--events 1000000] [--keep] [--rounds 5]

It creates a database of its own (``bench_audit_query``), migrates it and fills it with ``--events``
events in one ``INSERT ... SELECT generate_series`` (20 tenants of skewed size, 3 targets and 10
credentials each, 40 tools of skewed use, 90 days, 7 % denied and 3 % errors with their reasons, every
event sealed), unless ``--keep`` finds it filled from an earlier run. Then, for each filter the
admin offers, it opens the audit list through the real admin changelist view (Django's test client,
signed in as a superuser), prints the median wall time of ``--rounds`` loads and the number of
queries, and prints ``EXPLAIN (ANALYZE, BUFFERS)`` of every query on the event table. ``--keep``
leaves the database for the next run; without it the database is dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

DATABASE = "bench_audit_query"
TENANTS, TARGETS_PER_TENANT, CREDENTIALS_PER_TENANT, TOOLS, DAYS = 20, 3, 10, 40, 90
DENIED_REASONS = [
    "no rule allows POST /tools/{tool}",
    "credential expired",
    "credential revoked",
    "unknown credential",
    "rate limit: requests per minute",
    "tool definition not approved",
    "argument 'query' too long",
    "target not bound to this credential",
]
ERROR_REASONS = ["upstream unavailable", "upstream timed out", "response too large"]

# One INSERT ... SELECT: skewed tenants (random()^2), tools (random()^3); ids follow time, as in a
# live trail. Every event sealed (one stand-in seal), so the sealer's partial index is small, as live.
FILL_SQL = """
INSERT INTO audit_auditevent (
    event_id, created_at, request_id, tenant_id, target_id, credential_id, credential_name,
    credential_prefix, target_slug, http_method, path, route, jsonrpc_method, tool, jsonrpc_id,
    session_id, kind, decision, reason, status_code, upstream_status, latency_ms, request_bytes,
    response_bytes, client_ip, meter_notes, response_values, protections, details, seal_id
)
SELECT
    gen_random_uuid(), %(start)s::timestamptz + g.i * %(step)s::interval, md5(g.i::text),
    t.tenant, t.target, t.credential, 'agent-' || t.tenant || '-' || t.cred, 'mgw_' || t.tenant || '_' || t.cred,
    'docs-' || t.target, 'POST', '/mcp/docs-' || t.target || '/', 'POST /tools/tool-' || t.tool,
    'tools/call', 'tool-' || t.tool, g.i::text, '', 'call', t.decision,
    CASE t.decision
        WHEN 'denied' THEN replace((%(denied)s::text[])[1 + (g.i %% %(n_denied)s)], '{tool}', 'tool-' || t.tool)
        WHEN 'error' THEN (%(errors)s::text[])[1 + (g.i %% %(n_errors)s)]
        ELSE '' END,
    CASE t.decision WHEN 'allowed' THEN 200 WHEN 'denied' THEN 403 ELSE 502 END,
    200, 5 + (g.i %% 50), 180, 320, '127.0.0.1', '[]', '{}', '{}', '{}', %(seal)s
FROM generate_series(1, %(events)s) AS g(i)
CROSS JOIN LATERAL (
    SELECT tenant, tenant * 10 + (g.i %% %(targets)s) AS target, tenant * 100 + cred AS credential, cred,
           floor(%(tools)s * power(random() + 0 * g.i, 3))::int AS tool,
           CASE WHEN r < 0.07 THEN 'denied' WHEN r < 0.10 THEN 'error' ELSE 'allowed' END AS decision
    FROM (SELECT 1 + floor(%(tenants)s * power(random() + 0 * g.i, 2))::int AS tenant,
                 (g.i / 7) %% %(credentials)s AS cred, random() + 0 * g.i AS r) AS picked
) AS t
"""


def setup_django() -> None:
    import django
    from django.conf import settings

    if not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        raise SystemExit("this benchmark needs PostgreSQL: set DATABASE_URL=postgres://...")
    settings.DATABASES["default"]["TEST"] = {"NAME": DATABASE}
    django.setup()


def fill(events: int) -> None:
    """Tenants, targets and credentials as rows (the sidebar lists them), and the events."""
    from django.db import connection
    from django.utils import timezone

    from audit.models import AuditEvent, AuditSeal
    from gateway.models import Credential, Target, Tenant

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
    for tenant in range(1, TENANTS + 1):
        Tenant.objects.create(id=tenant, name=f"tenant-{tenant}")
        for target in range(TARGETS_PER_TENANT):
            Target.objects.create(
                id=tenant * 10 + target,
                tenant_id=tenant,
                slug=f"docs-{tenant * 10 + target}",
                upstream_url="http://127.0.0.1:9/mcp",
            )
        Credential.objects.bulk_create(
            Credential(
                id=tenant * 100 + cred,
                tenant_id=tenant,
                name=f"agent-{tenant}-{cred}",
                prefix=f"p{tenant}{cred}",
            )
            for cred in range(CREDENTIALS_PER_TENANT)
        )
    seal = AuditSeal.objects.create(
        sequence=1,
        created_at=timezone.now(),
        first_event_id=1,
        last_event_id=events,
        event_count=events,
        root="0" * 64,
        manifest=b"",
        manifest_sha256="0" * 64,
        previous_hash="0" * 64,
        seal_hash="0" * 64,
        key_id="bench",
        signature="0" * 128,
    )
    start = timezone.now() - timedelta(days=DAYS)
    params = {
        "start": start,
        "step": timedelta(days=DAYS) / events,
        "events": events,
        "seal": seal.id,
        "denied": DENIED_REASONS,
        "n_denied": len(DENIED_REASONS),
        "errors": ERROR_REASONS,
        "n_errors": len(ERROR_REASONS),
        "targets": TARGETS_PER_TENANT,
        "tools": TOOLS,
        "tenants": TENANTS,
        "credentials": CREDENTIALS_PER_TENANT,
    }
    with connection.cursor() as cursor:
        cursor.execute(FILL_SQL, params)
        cursor.execute("VACUUM ANALYZE audit_auditevent")
    print(f"filled {AuditEvent.objects.count():,} events in {time.perf_counter() - started:.1f} s")


def cases() -> list[tuple[str, dict[str, str]]]:
    """(what, the list's query string) for each filter, alone and combined; tenant 1 is the largest
    (about a fifth of the events), tenant 20 the smallest; tool-39 is the rarest."""
    from django.utils import timezone

    from audit.models import AuditEvent

    day = (timezone.now() - timedelta(days=30)).strftime("%Y-%m-%d")
    last = AuditEvent.objects.order_by("-id").values_list("request_id", flat=True).first() or ""
    return [
        ("newest events, no filter", {}),
        ("tenant (largest)", {"tenant__id__exact": "1"}),
        ("tenant (smallest)", {"tenant__id__exact": "20"}),
        ("period: one day a month ago", {"since": day, "until": day}),
        ("tenant + one day", {"tenant__id__exact": "1", "since": day, "until": day}),
        ("target", {"target__id__exact": "201"}),
        ("tenant + credential name", {"tenant__id__exact": "1", "credential_name": "agent-1-3"}),
        ("credential name, any tenant", {"credential_name": "agent-20-3"}),
        ("tenant + tool (rare)", {"tenant__id__exact": "20", "tool": "tool-39"}),
        ("tool (rare), any tenant", {"tool": "tool-39"}),
        ("tenant + decision denied", {"tenant__id__exact": "1", "decision__exact": "denied"}),
        ("tenant + reason (part)", {"tenant__id__exact": "1", "reason": "revoked"}),
        ("reason (part), any tenant", {"reason": "too large"}),
        (
            "tenant + day + tool + denied",
            {
                "tenant__id__exact": "1",
                "since": day,
                "until": day,
                "tool": "tool-1",
                "decision__exact": "denied",
            },
        ),
        ("search: a request id", {"q": last}),
        ("tenant, page 50", {"tenant__id__exact": "1", "p": "50"}),
    ]


def timed_loads(client: Any, url: str, rounds: int) -> tuple[float, list[dict[str, str]]]:
    """Median milliseconds of ``rounds`` loads of ``url``, and the queries of the last one."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times = []
    for _ in range(rounds):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url}: status {response.status_code}")
    return statistics.median(times), list(captured.captured_queries)


def explain(sql: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        return "\n".join(f"      {row[0]}" for row in cursor.fetchall())


def run_cases(rounds: int, show_plans: bool) -> list[tuple[str, float, int]]:
    from django.contrib.auth.models import User
    from django.test import Client
    from django.urls import reverse

    user = User.objects.filter(username="bench").first() or User.objects.create_superuser("bench", "", None)
    client = Client()
    client.force_login(user)
    base = reverse("admin:audit_auditevent_changelist")
    figures = []
    for what, query in cases():
        url = f"{base}?{urlencode(query)}" if query else base
        client.get(url)  # warm: templates, the policy cache, the buffer cache
        median, queries = timed_loads(client, url, rounds)
        figures.append((what, median, len(queries)))
        print(f"\n== {what}: {median:.1f} ms median of {rounds}, {len(queries)} queries  {url}")
        for query in queries:
            if show_plans and '"audit_auditevent"' in query["sql"] and query["sql"].startswith("SELECT"):
                print(f"   {query['sql'][:400]}")
                print(explain(query["sql"]))
    return figures


def selector_plans() -> None:
    """``audit_event_list`` as the API (and a reviewer scoped to several tenants) calls it: the newest
    100 events of two tenants, alone and with a tool."""
    from django.db import connection

    from audit.selectors import audit_event_list

    for what, criteria in [
        ("two small tenants", {"tenant_ids": [19, 20]}),
        ("two large tenants", {"tenant_ids": [1, 2]}),
        ("two tenants + tool", {"tenant_ids": [19, 20], "tool": "tool-39"}),
    ]:
        sql, params = audit_event_list(**criteria)[:100].query.sql_with_params()  # type: ignore[arg-type]
        with connection.cursor() as cursor:
            print(f"\n== audit_event_list, {what}")
            print(explain(cursor.mogrify(sql, params)))


def date_hierarchy_plan() -> None:
    """What the admin's date hierarchy would ask at its year level (why the list uses a period filter)."""
    from django.db import connection
    from django.utils import timezone

    from audit.models import AuditEvent

    months = AuditEvent.objects.filter(created_at__year=timezone.now().year).dates("created_at", "month")
    sql, params = months.query.sql_with_params()
    with connection.cursor() as cursor:
        print("\n== date hierarchy, months of this year (not used by the list)")
        print(explain(cursor.mogrify(sql, params)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="reuse a filled database, and keep it")
    parser.add_argument("--no-plans", action="store_true", help="timings only")
    options = parser.parse_args()
    setup_django()
    from django.db import connection

    from audit.models import AuditEvent

    existing = False
    if options.keep:
        with connection._nodb_cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE])
            existing = cursor.fetchone() is not None
    if existing:
        connection.settings_dict["NAME"] = DATABASE
        connection.close()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    else:
        connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        if AuditEvent.objects.order_by().filter(kind="call").count() < options.events:
            AuditEvent.objects.all().delete()
            fill(options.events)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE audit_auditevent")
        figures = run_cases(options.rounds, not options.no_plans)
        if not options.no_plans:
            selector_plans()
            date_hierarchy_plan()
        print("\n| filter | median ms | queries |\n|---|---:|---:|")
        for what, median, count in figures:
            print(f"| {what} | {median:.0f} | {count} |")
    finally:
        if not options.keep:
            connection.creation.destroy_test_db(DATABASE, verbosity=0)


if __name__ == "__main__":
    main()
