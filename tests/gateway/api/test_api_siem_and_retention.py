"""What an integration notices managing the audit trail's delivery through the API: a SIEM sink's
webhook secret is accepted and never shown, its delivery state is read-only and ``retry`` skips its
backoff, bad settings name the field; a tenant's retention is set and cleared; reviewers and read
tokens change nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from audit.models import AuditEvent, AuditSettings, SiemSink, SiemSinkState
from audit.retention import audit_retention_set
from gateway.models import Tenant
from gateway.services import tenant_create
from tests.gateway.api.clients import Caller, api_caller, member_caller

pytestmark = pytest.mark.django_db
SECRET = "webhook-signing-secret-never-shown"
SYSLOG = {"name": "collector", "kind": "syslog", "settings": {"host": "logs.example", "tls": False}}


@pytest.fixture
def acme() -> Tenant:
    return tenant_create(name="acme")


@pytest.fixture
def admin(acme: Tenant) -> Caller:
    return member_caller(acme, "admin", "alice")


def create_sink(caller: Caller, **fields: Any) -> dict[str, Any]:
    response = caller.call("POST", "/api/v1/siem-sinks/", {**SYSLOG, **fields})
    assert response.status_code == 201, response.content
    return response.json()  # type: ignore[no-any-return]


def test_webhook_secret_is_accepted_but_never_shown(admin: Caller) -> None:
    created = create_sink(
        admin, name="hook", kind="webhook", settings={"url": "https://siem.example/hook"}, secret=SECRET
    )
    assert created["has_secret"] is True and "secret" not in created
    for path in ("/api/v1/siem-sinks/", f"/api/v1/siem-sinks/{created['id']}/"):
        assert SECRET not in admin.call("GET", path).content.decode()
    assert SiemSink.objects.get(pk=created["id"]).secret_encrypted not in ("", SECRET)
    change = AuditEvent.objects.get(kind="change", details__object_type="siemsink")
    assert SECRET not in str(change.details) and change.details["source"] == "api"


def test_a_webhook_without_a_secret_is_refused_naming_settings(admin: Caller) -> None:
    body = {"name": "hook", "kind": "webhook", "settings": {"url": "https://siem.example/hook"}}
    response = admin.call("POST", "/api/v1/siem-sinks/", body)
    assert response.status_code == 400
    assert "secret" in response.json()["error"]["message"]
    assert list(response.json()["error"]["fields"]) == ["settings"]


@pytest.mark.parametrize("settings", [{"hots": "logs.example"}, {"host": "logs\u0000.example"}, []])
def test_bad_settings_are_a_400_naming_settings(admin: Caller, settings: Any) -> None:
    response = admin.call("POST", "/api/v1/siem-sinks/", {**SYSLOG, "settings": settings})
    assert response.status_code == 400, response.content
    assert list(response.json()["error"]["fields"]) == ["settings"]
    assert not SiemSink.objects.exists()


def test_sink_shows_where_delivery_stands_and_retry_skips_the_backoff(admin: Caller) -> None:
    # given a sink whose deliveries failed, waiting out its backoff
    created = create_sink(admin)
    later = timezone.now() + timedelta(hours=1)
    SiemSinkState.objects.filter(pk=created["id"]).update(
        failures=3, last_error="connection refused", next_attempt_at=later, backlog=7
    )
    shown = admin.call("GET", f"/api/v1/siem-sinks/{created['id']}/").json()
    assert (shown["failures"], shown["last_error"], shown["backlog"]) == (3, "connection refused", 7)
    assert shown["next_attempt_at"] is not None
    # when the admin asks for a retry
    retried = admin.call("POST", f"/api/v1/siem-sinks/{created['id']}/retry/", {})
    # then it is tried at the next run; what it failed with is still shown
    assert retried.status_code == 200, retried.content
    assert retried.json()["next_attempt_at"] is None and retried.json()["failures"] == 3
    assert SiemSinkState.objects.get(pk=created["id"]).next_attempt_at is None


def test_delivery_state_cannot_be_written(admin: Caller) -> None:
    created = create_sink(admin)
    cursor = SiemSinkState.objects.get(pk=created["id"]).cursor
    response = admin.call("PATCH", f"/api/v1/siem-sinks/{created['id']}/", {"cursor": cursor + 1000})
    assert response.status_code == 200
    assert SiemSinkState.objects.get(pk=created["id"]).cursor == cursor


def test_update_renames_and_disables_and_keeps_the_secret(admin: Caller) -> None:
    created = create_sink(
        admin, name="hook", kind="webhook", settings={"url": "https://siem.example/hook"}, secret=SECRET
    )
    stored = SiemSink.objects.get(pk=created["id"]).secret_encrypted
    response = admin.call(
        "PATCH", f"/api/v1/siem-sinks/{created['id']}/", {"name": "hook-2", "enabled": False}
    )
    assert response.status_code == 200, response.content
    sink = SiemSink.objects.get(pk=created["id"])
    assert (sink.name, sink.enabled, sink.secret_encrypted) == ("hook-2", False, stored)


def test_a_sinks_kind_cannot_change(admin: Caller) -> None:
    created = create_sink(admin)
    response = admin.call("PATCH", f"/api/v1/siem-sinks/{created['id']}/", {"kind": "file"})
    assert response.status_code == 400 and list(response.json()["error"]["fields"]) == ["kind"]


def test_a_taken_name_is_a_400_naming_it(admin: Caller) -> None:
    create_sink(admin)
    response = admin.call("POST", "/api/v1/siem-sinks/", SYSLOG)
    assert response.status_code == 400, response.content
    assert SiemSink.objects.count() == 1


def test_stale_if_match_does_not_overwrite_a_sink(admin: Caller) -> None:
    created = create_sink(admin)
    etag = admin.call("GET", f"/api/v1/siem-sinks/{created['id']}/")["ETag"]
    assert admin.call("PATCH", f"/api/v1/siem-sinks/{created['id']}/", {"enabled": False}).status_code == 200
    stale = admin.call("PATCH", f"/api/v1/siem-sinks/{created['id']}/", {"enabled": True}, If_Match=etag)
    assert stale.status_code == 412
    assert SiemSink.objects.get(pk=created["id"]).enabled is False


def test_deleting_a_sink_stops_its_delivery(admin: Caller) -> None:
    created = create_sink(admin)
    assert admin.call("DELETE", f"/api/v1/siem-sinks/{created['id']}/").status_code == 204
    assert not SiemSinkState.objects.filter(pk=created["id"]).exists()
    assert admin.call("GET", f"/api/v1/siem-sinks/{created['id']}/").status_code == 404


def test_a_read_token_cannot_create_or_retry_a_sink(acme: Tenant, admin: Caller) -> None:
    created = create_sink(admin)
    reader = api_caller(admin.user, scope="read")
    assert reader.call("GET", f"/api/v1/siem-sinks/{created['id']}/").status_code == 200
    assert reader.call("POST", "/api/v1/siem-sinks/", {**SYSLOG, "name": "other"}).status_code == 403
    assert reader.call("POST", f"/api/v1/siem-sinks/{created['id']}/retry/", {}).status_code == 403
    assert SiemSink.objects.count() == 1


def test_a_reviewer_sees_no_sink_and_no_audit_settings(acme: Tenant, admin: Caller) -> None:
    created = create_sink(admin)
    reviewer = member_caller(acme, "reviewer", "rita")
    for path in ("/api/v1/siem-sinks/", f"/api/v1/siem-sinks/{created['id']}/", "/api/v1/audit-settings/"):
        assert reviewer.call("GET", path).status_code == 403, path
    assert (
        reviewer.call("PATCH", f"/api/v1/audit-settings/{acme.pk}/", {"retention_days": 1}).status_code == 403
    )
    assert not AuditSettings.objects.exists()


# Audit settings


def test_a_tenant_never_configured_keeps_its_events_forever(acme: Tenant, admin: Caller) -> None:
    listed = admin.call("GET", "/api/v1/audit-settings/").json()["results"]
    assert listed == [{"id": acme.pk, "tenant": "acme", "retention_days": None}]


def test_retention_set_through_the_api_is_the_one_retention_applies(acme: Tenant, admin: Caller) -> None:
    response = admin.call("PATCH", f"/api/v1/audit-settings/{acme.pk}/", {"retention_days": 365})
    assert response.status_code == 200, response.content
    assert response.json()["retention_days"] == 365
    assert AuditSettings.objects.get(tenant=acme).retention_days == 365
    changes = AuditEvent.objects.filter(kind="change", details__object_type="auditsettings")
    assert changes and {(c.details["source"], c.details["actor"]) for c in changes} == {("api", "alice")}
    cleared = admin.call("PUT", f"/api/v1/audit-settings/{acme.pk}/", {"retention_days": None})
    assert cleared.json()["retention_days"] is None
    assert AuditSettings.objects.get(tenant=acme).retention_days is None


@pytest.mark.parametrize("days", [0, -5, 10**12, "soon"])
def test_retention_out_of_range_names_the_field(acme: Tenant, admin: Caller, days: Any) -> None:
    response = admin.call("PATCH", f"/api/v1/audit-settings/{acme.pk}/", {"retention_days": days})
    assert response.status_code == 400, response.content
    assert list(response.json()["error"]["fields"]) == ["retention_days"]


def test_stale_if_match_does_not_overwrite_retention(acme: Tenant, admin: Caller) -> None:
    etag = admin.call("GET", f"/api/v1/audit-settings/{acme.pk}/")["ETag"]
    audit_retention_set(tenant=acme, days=90)  # another integration, meanwhile
    stale = admin.call("PATCH", f"/api/v1/audit-settings/{acme.pk}/", {"retention_days": 7}, If_Match=etag)
    assert stale.status_code == 412
    fresh = admin.call("GET", f"/api/v1/audit-settings/{acme.pk}/")["ETag"]
    current = admin.call("PATCH", f"/api/v1/audit-settings/{acme.pk}/", {"retention_days": 7}, If_Match=fresh)
    assert current.status_code == 200 and AuditSettings.objects.get(tenant=acme).retention_days == 7
