"""The audit list a reviewer filters in the admin: by period, tenant, target, credential name, tool,
decision and reason; what it costs stays the same however many events there are."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from audit.paging import CappedCountPaginator
from audit.selectors import audit_event_list
from gateway.models import Credential, Target, Tenant
from gateway.services import credential_create, credential_deactivate, target_create, tenant_create
from tests.queries import count_request_queries

DAY = datetime(2026, 10, 27, tzinfo=UTC)
LIST = "admin:audit_auditevent_changelist"


@pytest.fixture
def admin(db: None, client: Client, django_user_model: type[User]) -> Client:
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "unused"))
    return client


@pytest.fixture
def acme(db: None) -> Tenant:
    return tenant_create(name="acme")


@pytest.fixture
def globex(db: None) -> Tenant:
    return tenant_create(name="globex")


def make_target(tenant: Tenant, slug: str) -> Target:
    return target_create(tenant=tenant, slug=slug, upstream_url="http://127.0.0.1:9/mcp")


def event(request_id: str, tenant: Tenant | None, **fields: Any) -> AuditEvent:
    values: dict[str, Any] = {
        "created_at": DAY + timedelta(hours=12),
        "http_method": "POST",
        "path": "/mcp/docs/",
        "tool": "search",
        "decision": "allowed",
        "status_code": 200,
        "latency_ms": 1.0,
        **fields,
    }
    return AuditEvent.objects.create(event_id=uuid.uuid4(), request_id=request_id, tenant=tenant, **values)


def listed(admin: Client, **query: str) -> set[str]:
    """The request ids of the proxied calls the audit list shows for ``query``."""
    response = admin.get(reverse(LIST), query)
    assert response.status_code == 200
    return {row.request_id for row in response.context["cl"].result_list if row.kind == "call"}


def test_the_period_filter_lists_the_events_from_since_through_the_until_day(admin, acme):
    event("before", acme, created_at=DAY - timedelta(seconds=1))
    event("first-second", acme, created_at=DAY)
    event("last-second", acme, created_at=DAY + timedelta(days=1, seconds=-1))
    event("next-day", acme, created_at=DAY + timedelta(days=1))

    assert listed(admin, since="2026-10-27", until="2026-10-27") == {"first-second", "last-second"}
    assert listed(admin, since="2026-10-27T23:00") == {"last-second", "next-day"}
    assert listed(admin, until="2026-10-27T12:00") == {"before", "first-second"}


def test_a_period_that_is_not_a_date_shows_an_error_and_no_event(admin, acme):
    event("any", acme)

    response = admin.get(reverse(LIST), {"since": "last tuesday", "until": "2026-02-30"})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []
    [message] = [str(message) for message in response.context["messages"]]
    assert "'last tuesday' is not a date" in message


def test_the_recent_period_links_list_the_events_since_then(admin, acme):
    from django.utils import timezone

    event("just-now", acme, created_at=timezone.now() - timedelta(minutes=5))
    event("yesterday", acme, created_at=timezone.now() - timedelta(hours=30))
    page = admin.get(reverse(LIST)).content.decode()
    assert "Last hour" in page and "Last 7 days" in page

    since = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert listed(admin, since=since) == {"just-now"}


def test_a_filter_typed_in_keeps_the_other_filters_the_search_and_the_order(admin, acme):
    page = admin.get(reverse(LIST), {"tool": "search", "since": "2026-10-01", "q": "req", "o": "1"})
    html = page.content.decode()

    for name, value in [("tool", "search"), ("since", "2026-10-01"), ("q", "req"), ("o", "1")]:
        assert f'<input type="hidden" name="{name}" value="{value}">' in html
    # the period, credential-name and reason forms and the search box; not the tool's own form
    assert html.count('<input type="hidden" name="tool"') == 4


def test_events_are_filtered_by_tenant_and_by_target(admin, acme, globex):
    docs, wiki = make_target(acme, "docs"), make_target(acme, "wiki")
    event("acme-docs", acme, target=docs)
    event("acme-wiki", acme, target=wiki)
    event("globex", globex)

    assert listed(admin, tenant__id__exact=str(acme.id)) == {"acme-docs", "acme-wiki"}
    assert listed(admin, target__id__exact=str(wiki.id)) == {"acme-wiki"}


def test_a_deactivated_and_renamed_credential_is_found_by_the_name_it_called_with(admin, acme):
    issued = credential_create(tenant=acme, name="ci-agent", targets=[], allow=[])
    event("by-ci", acme, credential=issued.credential, credential_name="ci-agent")
    event("by-other", acme, credential_name="ci-agent-2")
    credential_deactivate(credential=issued.credential)
    Credential.objects.filter(pk=issued.credential.pk).update(name="retired")

    assert listed(admin, credential_name="ci-agent") == {"by-ci"}
    assert listed(admin, credential_name="retired") == set()


def test_events_are_filtered_by_exact_tool_and_by_decision(admin, acme):
    event("search", acme, tool="search")
    event("search-all", acme, tool="search_all")
    event("denied-search", acme, tool="search", decision="denied", status_code=403, reason="no rule")

    assert listed(admin, tool="search") == {"search", "denied-search"}
    assert listed(admin, decision__exact="denied") == {"denied-search"}
    assert listed(admin, tool="search", decision__exact="allowed") == {"search"}


def test_a_reason_is_found_by_any_part_of_it_in_any_case(admin, acme):
    event("revoked", acme, decision="denied", status_code=401, reason="credential revoked")
    event("expired", acme, decision="denied", status_code=401, reason="credential expired")
    event("allowed", acme)

    assert listed(admin, reason="REVOKED") == {"revoked"}
    assert listed(admin, reason="credential") == {"revoked", "expired"}


def test_a_request_id_is_found_by_the_search_box(admin, acme):
    event("req-wanted", acme)
    event("req-wanted-not", acme)

    assert listed(admin, q="req-wanted") == {"req-wanted"}


def test_the_selector_combines_every_criterion_and_keeps_tenants_apart(acme, globex):
    docs = make_target(acme, "docs")
    wanted = dict(target=docs, credential_name="agent", tool="charge", decision="denied", reason="rate limit")
    event("wanted", acme, **wanted)
    event("other-tenant", globex, **wanted)
    event("too-early", acme, **{**wanted, "created_at": DAY - timedelta(days=2)})
    event("other-tool", acme, **{**wanted, "tool": "search"})

    found = audit_event_list(
        tenant_ids=[acme.id],
        since=DAY,
        until=DAY + timedelta(days=1),
        target_id=docs.id,
        credential_name="agent",
        tool="charge",
        decision="denied",
        reason="limit",
    )

    assert [row.request_id for row in found] == ["wanted"]
    assert not audit_event_list(tenant_ids=[]).exists()


def test_the_list_runs_the_same_queries_for_3_events_as_for_60(admin, acme):
    docs = make_target(acme, "docs")
    filters = {"since": "2026-10-01", "tenant__id__exact": str(acme.id), "tool": "search", "reason": "x"}

    def queries() -> list[int]:
        counts = []
        for query in [{}, filters, {"credential_name": "agent", "decision__exact": "denied", "q": "r"}]:
            with count_request_queries() as log:
                assert admin.get(reverse(LIST), query).status_code == 200
            counts.append(len(log.statements))
        return counts

    for index in range(3):
        event(f"few-{index}", acme, target=docs, credential_name="agent")
    few = queries()
    for index in range(57):
        event(f"many-{index}", acme, target=make_target(acme, f"t{index}") if index % 10 == 0 else docs)
    assert queries() == few


def test_the_list_never_reads_the_whole_trail_to_count_it_or_draw_its_filters(admin, acme, monkeypatch):
    from audit.admin import AuditEventAdmin

    # more events than a page holds (with fewer, the page is the counted few, read without a LIMIT)
    monkeypatch.setattr(AuditEventAdmin, "list_per_page", 2)
    for index in range(3):
        event(f"e{index}", acme)

    with count_request_queries() as log:
        admin.get(reverse(LIST), {"tenant__id__exact": str(acme.id), "tool": "search"})

    on_events = [sql for sql in log.statements if '"audit_auditevent"' in sql]
    assert on_events, "the list read no event"
    for sql in on_events:
        assert "DISTINCT" not in sql.upper()
        assert "LIMIT" in sql.upper(), f"an unbounded read of the events: {sql}"


def test_past_the_count_cap_the_list_says_more_than_and_still_pages(admin, acme, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "cap", 5)
    for index in range(8):
        event(f"e{index}", acme, created_at=DAY + timedelta(minutes=index))

    response = admin.get(reverse(LIST))

    assert "More than 5 audit events" in response.content.decode()
    assert len(response.context["cl"].result_list) == 8 + AuditEvent.objects.exclude(kind="call").count()
