"""The security admin's dashboard: what a tenant's admin, reviewer or a superuser sees, and what
another tenant's member cannot reach."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from gateway.models import Target, Tenant
from gateway.services import target_create, tenant_create, user_create
from metering.services import meter_create
from tests.conftest import require_service
from tests.dashboard.helpers import call_event, store
from tests.queries import count_request_queries

PASSWORD = "a-long-enough-test-password-1"
UPSTREAM = "http://127.0.0.1:9/mcp"


def tenant_with_target(name: str) -> Target:
    return target_create(tenant=tenant_create(name=name), slug=f"{name}-docs", upstream_url=UPSTREAM)


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def member(tenant: Tenant, role: str = "admin", name: str = "alice") -> Client:
    return logged_in(user_create(username=name, tenant=tenant, role=role, password=PASSWORD).user)


@pytest.fixture
def acme(db: None) -> Target:
    return tenant_with_target("acme")


@pytest.fixture
def globex(db: None) -> Target:
    return tenant_with_target("globex")


def page(client: Client, tenant: Tenant, period: str = "24h") -> str:
    response = client.get(reverse("dashboard:tenant", args=[tenant.pk]), {"period": period})
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def test_anonymous_visitor_is_sent_to_the_admin_login(acme: Target) -> None:
    response = Client().get(reverse("dashboard:tenant", args=[acme.tenant_id]))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login") + "?next=/dashboard/")


def test_member_lands_on_their_own_tenant(acme: Target, globex: Target) -> None:
    response = member(globex.tenant, "reviewer").get(reverse("dashboard:home"))

    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:tenant", args=[globex.tenant_id])


@pytest.mark.parametrize("role", ["admin", "reviewer"])
def test_another_tenants_dashboard_is_not_found(acme: Target, globex: Target, role: str) -> None:
    store(call_event(globex, tool="globex-secret-tool"))
    client = member(acme.tenant, role)

    response = client.get(reverse("dashboard:tenant", args=[globex.tenant_id]))

    assert response.status_code == 404
    assert b"globex" not in response.content


def test_member_sees_no_tenant_picker_and_no_other_tenants_name(acme: Target, globex: Target) -> None:
    html = page(member(acme.tenant), acme.tenant)

    assert 'id="tenant-picker"' not in html
    assert "globex" not in html


def test_superuser_picks_any_tenant(acme: Target, globex: Target) -> None:
    admin = User.objects.create_superuser("root", password=PASSWORD)
    store(call_event(globex, tool="globex-lookup"))

    html = page(logged_in(admin), globex.tenant)

    assert 'id="tenant-picker"' in html
    assert ">acme</option>" in html and ">globex</option>" in html
    assert "globex-lookup" in html


def test_staff_user_without_a_tenant_sees_no_dashboard(acme: Target) -> None:
    loner = User.objects.create_user("loner", password=PASSWORD, is_staff=True)

    client = logged_in(loner)

    assert client.get(reverse("dashboard:home")).status_code == 404
    assert client.get(reverse("dashboard:tenant", args=[acme.tenant_id])).status_code == 404


def test_unknown_period_is_a_clear_400(acme: Target) -> None:
    response = member(acme.tenant).get(reverse("dashboard:tenant", args=[acme.tenant_id]), {"period": "1y"})

    assert response.status_code == 400
    assert b"1h, 24h, 7d" in response.content


def test_totals_count_the_periods_calls_denials_rate_limits_and_redactions(acme: Target) -> None:
    redacted = {
        "filters": [],
        "redactions": [{"policy": 1, "mode": "enforce", "action": "mask", "kinds": {}}],
    }
    store(
        call_event(acme),
        call_event(acme, protections={"filters": [], "redactions": []}),
        call_event(acme, protections=redacted),
        call_event(acme, decision="denied", status_code=403, reason="no rule allows POST /tools/drop"),
        call_event(acme, decision="denied", status_code=429, reason="meter m1 exhausted"),
        call_event(acme, ago=timedelta(hours=2)),  # outside the last hour
        call_event(acme, ago=timedelta(days=2)),  # outside the last 24 hours
    )
    client = member(acme.tenant)

    hour, day, week = (
        page(client, acme.tenant, "1h"),
        page(client, acme.tenant, "24h"),
        page(client, acme.tenant, "7d"),
    )

    assert '<span class="figure" id="total-calls">5</span>' in hour
    assert '<span class="figure" id="total-calls">6</span>' in day
    assert '<span class="figure" id="total-calls">7</span>' in week
    assert '<span class="figure" id="total-denials">2</span>' in hour
    assert '<span class="figure">1</span><span class="caption">rate-limited</span>' in hour
    assert '<span class="figure">1</span><span class="caption">with redactions</span>' in hour


def test_recent_denials_show_their_reason_and_link_to_the_admin_event(acme: Target) -> None:
    denial = call_event(acme, decision="denied", status_code=403, reason="no rule allows POST /tools/drop")
    denial.save()

    html = page(member(acme.tenant, "reviewer"), acme.tenant)

    assert "no rule allows POST /tools/drop" in html
    assert reverse("admin:audit_auditevent_change", args=[denial.pk]) in html


def test_charts_show_top_tools_agents_and_latency_per_target(acme: Target) -> None:
    store(
        *[call_event(acme, tool="search", latency_ms=10.0 + i) for i in range(20)],
        *[call_event(acme, tool="fetch", credential_name="nightly-sync", latency_ms=50.0) for _ in range(5)],
    )

    html = page(member(acme.tenant), acme.tenant)

    assert "<svg" in html
    assert "<title>search: 20</title>" in html
    assert "<title>fetch: 5</title>" in html
    assert "<title>nightly-sync: 5</title>" in html
    # median of 10..29 and 5 x 50 (25 calls): 22; nearest-rank or interpolated p95 lies at 50.
    assert "acme-docs: p50 22 ms, p95 50 ms over 25 calls" in html


def test_names_from_agents_are_escaped_in_charts_and_tables(acme: Target) -> None:
    hostile = "<script>alert(1)</script>"
    store(
        call_event(acme, tool=hostile, credential_name=hostile),
        call_event(acme, tool=hostile, decision="denied", status_code=403, reason=hostile),
    )

    html = page(member(acme.tenant), acme.tenant)

    assert hostile not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_meters_near_their_limits_are_listed_with_their_owner(acme: Target) -> None:
    meter_create(tenant=acme.tenant, target=acme, kind="request_count", window="minute", limit=50)

    html = page(member(acme.tenant), acme.tenant)

    assert "acme-docs · calls per minute" in html


def test_the_page_costs_the_same_queries_with_ten_or_a_thousand_calls(acme: Target) -> None:
    client = member(acme.tenant)
    store(*[call_event(acme, tool=f"tool-{i % 3}") for i in range(10)])
    page(client, acme.tenant)  # warm: session, user
    with count_request_queries() as few:
        page(client, acme.tenant)
    store(*[call_event(acme, tool=f"tool-{i % 30}", credential_name=f"agent-{i % 7}") for i in range(1000)])

    with count_request_queries() as many:
        page(client, acme.tenant)

    assert len(many.statements) == len(few.statements) <= 14


def test_postgresql_single_scan_counts_the_same_as_one_query_per_grouping(acme: Target) -> None:
    from django.db import connection
    from django.utils import timezone

    from dashboard.selectors import PERIODS, fold_groups, grouped_in_one_scan, grouped_one_by_one

    if connection.vendor != "postgresql":
        require_service(
            "PostgreSQL", "GROUPING SETS is the PostgreSQL reader and DATABASE_URL is not PostgreSQL"
        )
    redacted = {
        "filters": [],
        "redactions": [{"policy": 1, "mode": "enforce", "action": "mask", "kinds": {}}],
    }
    store(
        *[
            call_event(acme, ago=timedelta(minutes=i), tool=f"t{i % 4}", credential_name=f"a{i % 3}")
            for i in range(50)
        ],
        call_event(acme, decision="denied", status_code=429, protections=redacted, tool=""),
        call_event(acme, ago=timedelta(hours=3), tool="too-old"),
    )
    period, now = PERIODS["1h"], timezone.now()
    buckets = period.buckets(now)

    def summary(reader: object) -> object:
        groups = reader(tenant_id=acme.tenant_id, period=period, since=buckets[0])  # type: ignore[operator]
        return fold_groups(groups, buckets, period)

    one_scan, portable = summary(grouped_in_one_scan), summary(grouped_one_by_one)

    assert one_scan == portable
    assert sum(one_scan.activity.calls) == 51  # type: ignore[attr-defined]
    assert [row["name"] for row in one_scan.tools] == ["t0", "t1", "t2", "t3"]  # type: ignore[attr-defined]


def test_a_page_whose_queries_run_too_long_answers_503_and_offers_a_shorter_period(
    acme: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import connection

    from dashboard import selectors, views

    if connection.vendor != "postgresql":
        require_service("PostgreSQL", "statement_timeout bounds the queries only on PostgreSQL")

    def slow_summary(**kwargs: object) -> object:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(5)")
        raise AssertionError("the query was not cancelled")

    monkeypatch.setattr(views, "QUERY_SECONDS", 0.2)
    monkeypatch.setattr(selectors, "call_summary", slow_summary)

    response = member(acme.tenant).get(reverse("dashboard:tenant", args=[acme.tenant_id]), {"period": "7d"})

    assert response.status_code == 503
    assert b"took more than 0.2 seconds" in response.content
    assert b'href="?period=1h"' in response.content


def test_superuser_lands_on_the_first_tenant_by_name_or_is_told_there_is_none(db: None) -> None:
    client = logged_in(User.objects.create_superuser("root", password=PASSWORD))
    assert b"No tenants yet" in client.get(reverse("dashboard:home")).content

    tenant_with_target("zeta")
    alpha = tenant_with_target("alpha")
    response = client.get(reverse("dashboard:home"))

    assert response["Location"] == reverse("dashboard:tenant", args=[alpha.tenant_id])
