"""The admin: meters inline with their current use, added in place, counters reset and audited."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from audit.models import AuditEvent
from metering.models import Meter
from metering.services import meter_create
from tests.conftest import issue_credential
from tests.metering.conftest import post_call


@pytest.fixture
def admin(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "unused-password")
    client.force_login(user)
    return client


def meter_rows(prefix: str = "meters", **row: str) -> dict[str, str]:
    """One new inline meter row, as the browser posts it."""
    fields = {
        "kind": "request_count",
        "window": "minute",
        "limit": "5",
        "route": "",
        "value_paths": "",
        "fail_mode": "open",
        "description": "",
        **row,
    }
    data = {
        f"{prefix}-TOTAL_FORMS": "1",
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    data.update({f"{prefix}-0-{name}": value for name, value in fields.items()})
    return data


def test_credential_page_shows_each_meter_with_its_current_use_and_reset_time(admin, gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    meter_create(tenant=tenant, credential=issued.credential, kind="request_count", window="minute", limit=5)
    for _ in range(2):
        assert post_call(gateway.proxy_url("docs"), issued.token).status_code == 200

    page = admin.get(reverse("admin:gateway_credential_change", args=[issued.credential.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "credential meters" in html.lower()
    assert "2 of 5" in html
    assert "Room back at (UTC)" in html and "reset…" in html


def test_a_meter_added_on_the_target_page_belongs_to_the_targets_tenant(admin, tenant, target):
    form = {
        "slug": "docs",
        "kind": "mcp",
        "upstream_url": target.upstream_url,
        "timeout_seconds": "30",
        "allowed_origins": "",
        "auth_type": "bearer",
        "auth_header_name": "",
        "upstream_secret": "",
        **meter_rows(
            kind="response_value",
            window="month",
            limit="5000000",
            value_paths="$.result.structuredContent.usage.total_tokens",
        ),
    }
    response = admin.post(reverse("admin:gateway_target_change", args=[target.pk]), form)
    assert response.status_code == 302, response.content.decode()[:3000]
    meter = Meter.objects.get()
    assert (meter.tenant_id, meter.target_id, meter.credential_id, meter.scope) == (
        tenant.pk,
        target.pk,
        None,
        "target",
    )
    assert meter.value_paths == ["$.result.structuredContent.usage.total_tokens"]


def test_an_invalid_json_path_is_shown_with_the_parsers_message(admin, tenant):
    form = {"name": "acme", **meter_rows(kind="response_value", value_paths="$.result[")}
    response = admin.post(reverse("admin:gateway_tenant_change", args=[tenant.pk]), form)
    assert response.status_code == 200
    assert "Invalid JSON path &#x27;$.result[&#x27;: Parse error" in response.content.decode()
    assert not Meter.objects.exists()


def test_resetting_a_counter_lets_calls_through_again_and_is_audited(admin, gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    meter = meter_create(
        tenant=tenant, credential=issued.credential, kind="request_count", window="day", limit=2
    )
    url = gateway.proxy_url("docs")
    assert [post_call(url, issued.token).status_code for _ in range(3)] == [200, 200, 429]

    response = admin.post(
        reverse("admin:metering_meter_changelist"),
        {"action": "reset_counters", "_selected_action": [meter.pk]},
    )
    assert response.status_code == 302
    assert post_call(url, issued.token).status_code == 200
    gateway.flush_audit()
    [reset] = AuditEvent.objects.filter(path="admin: reset meter counter")
    assert reset.reason == f"meter m{meter.pk} counter reset by admin 'root' (was 2 of 2 per day)"
    assert (reset.tenant_id, reset.credential_id) == (tenant.pk, issued.credential.pk)
    assert LogEntry.objects.filter(object_id=str(meter.pk), change_message="Reset counter (was 2)").exists()
