"""What an integration notices using the API: secrets write-only, tokens shown once, ETag/If-Match,
cursor pages, error bodies that name the field, the change log naming the API user."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from audit.models import AuditEvent
from gateway.models import Credential, Target
from gateway.services import tenant_create
from tests.factories import listed
from tests.gateway.api.clients import Caller, member_caller, superuser_caller

pytestmark = pytest.mark.django_db
UPSTREAM = "http://127.0.0.1:9/mcp"
SECRET = "upstream-secret-never-shown"


@pytest.fixture
def admin() -> Caller:
    return member_caller(tenant_create(name="acme"), "admin", "alice")


def create_target(caller: Caller, **fields: Any) -> dict[str, Any]:
    body = {"slug": "docs", "upstream_url": UPSTREAM, "auth_type": "bearer", "auth_secret": SECRET, **fields}
    response = caller.call("POST", "/api/v1/targets/", body)
    assert response.status_code == 201, response.content
    return response.json()  # type: ignore[no-any-return]


def test_upstream_secret_is_accepted_but_never_shown(admin: Caller) -> None:
    created = create_target(admin)
    assert created["has_secret"] is True and "auth_secret" not in created
    shown = admin.call("GET", f"/api/v1/targets/{created['id']}/")
    assert SECRET not in shown.content.decode()
    assert Target.objects.get(pk=created["id"]).auth_secret_encrypted not in ("", SECRET)
    change = AuditEvent.objects.get(kind="change", details__object_type="target")
    assert SECRET not in str(change.details) and change.details["source"] == "api"
    assert change.details["actor"] == "alice"


def test_put_without_the_secret_keeps_it(admin: Caller) -> None:
    created = create_target(admin)
    stored = Target.objects.get(pk=created["id"]).auth_secret_encrypted
    body = {key: created[key] for key in ("slug", "upstream_url", "auth_type", "timeout_seconds")}
    response = admin.call("PUT", f"/api/v1/targets/{created['id']}/", {**body, "timeout_seconds": 5})
    assert response.status_code == 200, response.content
    assert response.json()["has_secret"] is True and response.json()["timeout_seconds"] == 5
    assert Target.objects.get(pk=created["id"]).auth_secret_encrypted == stored


def test_validation_error_names_the_field(admin: Caller) -> None:
    response = admin.call(
        "POST", "/api/v1/targets/", {"slug": "docs", "upstream_url": UPSTREAM, "auth_type": "bearer"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and list(error["fields"]) == ["auth_secret"]
    assert error["message"].startswith("auth_secret:")


def test_refused_upstream_names_upstream_url(admin: Caller) -> None:
    response = admin.call(
        "POST", "/api/v1/targets/", {"slug": "meta", "upstream_url": "http://169.254.169.254/"}
    )
    assert response.status_code == 400
    assert "upstream_url" in response.json()["error"]["fields"]


def test_taken_slug_is_a_field_error_not_a_500(admin: Caller) -> None:
    create_target(admin)
    response = admin.call("POST", "/api/v1/targets/", {"slug": "docs", "upstream_url": UPSTREAM})
    assert response.status_code == 400
    assert "slug" in response.json()["error"]["fields"]


def test_if_match_with_a_stale_etag_is_refused_with_412(admin: Caller) -> None:
    # given two integrations that read the same target
    created = create_target(admin)
    url = f"/api/v1/targets/{created['id']}/"
    etag = admin.call("GET", url)["ETag"]
    # when the first one changes it
    first = admin.call("PATCH", url, {"timeout_seconds": 10}, **{"If-Match": etag})
    assert first.status_code == 200 and first["ETag"] != etag
    # then the second one's change, made on what it read, is refused
    second = admin.call("PATCH", url, {"timeout_seconds": 20}, **{"If-Match": etag})
    assert second.status_code == 412
    assert second.json()["error"]["code"] == "precondition_failed"
    assert Target.objects.get(pk=created["id"]).timeout_seconds == 10
    assert admin.call("DELETE", url, **{"If-Match": etag}).status_code == 412
    assert admin.call("DELETE", url, **{"If-Match": first["ETag"]}).status_code == 204


def test_credential_token_is_shown_once_and_rotate_replaces_it(admin: Caller) -> None:
    target = create_target(admin)
    body = {"name": "agent", "targets": [target["id"]], "allow": [{"method": "POST", "path": "/tools/*"}]}
    created = admin.call("POST", "/api/v1/credentials/", body)
    assert created.status_code == 201, created.content
    token, credential = created.json()["token"], created.json()["credential"]
    assert token.startswith("mgw_") and credential["rules"][0]["path"] == "/tools/*"
    url = f"/api/v1/credentials/{credential['id']}/"
    assert token not in admin.call("GET", url).content.decode()
    rotated = admin.call("POST", f"{url}rotate/").json()
    assert rotated["token"] != token and rotated["credential"]["prefix"] != credential["prefix"]
    assert admin.call("POST", f"{url}revoke/").json()["status"] == "revoked"
    assert admin.call("POST", f"{url}deactivate/").json()["status"] == "deactivated"
    listed_ids = [row["id"] for row in admin.call("GET", "/api/v1/credentials/").json()["results"]]
    assert credential["id"] not in listed_ids
    assert admin.call("GET", f"{url}").status_code == 200
    shown = admin.call("GET", "/api/v1/credentials/?include_deactivated=true").json()["results"]
    assert credential["id"] in [row["id"] for row in shown]


def test_jwt_credential_is_created_without_a_token_and_its_secret_is_write_only(admin: Caller) -> None:
    secret = "jwt-hs256-s3cret-never-displayed-" * 2
    body = {
        "name": "idp-agent", "kind": "jwt", "jwt_issuer": "https://idp.example.com", "jwt_audience": "gateway",
        "jwt_subject": "agent-1", "jwt_hs256_secret": secret,
    }  # fmt: skip
    response = admin.call("POST", "/api/v1/credentials/", body)
    assert response.status_code == 201, response.content
    assert response.json()["token"] is None and response.json()["credential"]["has_hs256_secret"] is True
    assert secret not in response.content.decode()
    rotate = admin.call("POST", f"/api/v1/credentials/{response.json()['credential']['id']}/rotate/")
    assert rotate.status_code == 400


def test_jwt_credential_without_a_key_names_what_is_missing(admin: Caller) -> None:
    body = {
        "name": "idp",
        "kind": "jwt",
        "jwt_issuer": "https://idp",
        "jwt_audience": "gw",
        "jwt_subject": "a",
    }
    response = admin.call("POST", "/api/v1/credentials/", body)
    assert response.status_code == 400 and "key source" in response.json()["error"]["message"]


def test_lists_are_cursor_paginated(admin: Caller) -> None:
    target = create_target(admin)
    for index in range(5):
        rule = {"credential": None, "method": "POST", "path": f"/tools/t{index}"}
        if index == 0:
            issued = admin.call("POST", "/api/v1/credentials/", {"name": "agent", "targets": [target["id"]]})
            credential_id = issued.json()["credential"]["id"]
        rule["credential"] = credential_id
        assert admin.call("POST", "/api/v1/rules/", rule).status_code == 201
    first = admin.call("GET", "/api/v1/rules/?page_size=2").json()
    assert len(first["results"]) == 2 and first["next"] and "cursor=" in first["next"]
    seen = [row["id"] for row in first["results"]]
    page = first
    while page["next"]:
        page = admin.call("GET", page["next"]).json()
        seen += [row["id"] for row in page["results"]]
    assert len(seen) == len(set(seen)) == 5


def test_rules_filtered_by_credential(admin: Caller) -> None:
    one = admin.call(
        "POST", "/api/v1/credentials/", {"name": "one", "allow": [{"method": "POST", "path": "/a"}]}
    )
    two = admin.call(
        "POST", "/api/v1/credentials/", {"name": "two", "allow": [{"method": "GET", "path": "/b"}]}
    )
    one_id, two_id = one.json()["credential"]["id"], two.json()["credential"]["id"]
    rows = admin.call("GET", f"/api/v1/rules/?credential={two_id}").json()["results"]
    assert [(row["credential"], row["path"]) for row in rows] == [(two_id, "/b")]
    assert one_id != two_id
    assert admin.call("GET", "/api/v1/rules/?credential=1.5").status_code == 400
    assert admin.call("GET", f"/api/v1/rules/?credential={10**30}").status_code == 400


def test_meter_shows_its_current_use(admin: Caller) -> None:
    response = admin.call(
        "POST", "/api/v1/meters/", {"kind": "request_count", "window": "minute", "limit": 5}
    )
    assert response.status_code == 201, response.content
    meter = admin.call("GET", f"/api/v1/meters/{response.json()['id']}/").json()
    assert meter["name"] == f"m{meter['id']}" and meter["scope"] == "tenant"
    assert set(meter["current"]) == {"used", "resets_at", "note"}
    bad = admin.call("POST", "/api/v1/meters/", {"kind": "request_count", "limit": 1.5})
    assert bad.status_code == 400 and "limit" in bad.json()["error"]["fields"]


def test_held_tool_is_approved_only_with_the_reviewed_hash(admin: Caller) -> None:
    target = Target.objects.get(pk=create_target(admin, hold_new_tools=True)["id"])
    pin = listed(target, "search")
    url = f"/api/v1/tools/{pin.pk}/"
    shown = admin.call("GET", url).json()
    assert shown["state"] == "pending" and shown["served_definition"]
    stale = admin.call("POST", f"{url}approve/", {"served_hash": "0" * 64})
    assert stale.status_code == 400 and "changed again" in stale.json()["error"]["message"]
    approved = admin.call("POST", f"{url}approve/", {"served_hash": shown["served_hash"]})
    assert approved.status_code == 200 and approved.json()["state"] == "approved"
    assert approved.json()["approved_by"] == "alice"


def test_credential_referenced_by_audit_events_cannot_be_deleted_with_its_tenant() -> None:
    root = superuser_caller()
    tenant = root.call("POST", "/api/v1/tenants/", {"name": "acme"}).json()
    created = root.call("POST", "/api/v1/credentials/", {"tenant": tenant["id"], "name": "agent"}).json()
    credential = Credential.objects.get(pk=created["credential"]["id"])
    AuditEvent.objects.create(
        created_at=credential.created_at, request_id="r", tenant_id=tenant["id"], credential=credential,
        http_method="POST", path="/mcp/x/", decision="allowed", status_code=200, latency_ms=1,
    )  # fmt: skip
    response = root.call("DELETE", f"/api/v1/tenants/{tenant['id']}/")
    assert response.status_code == 409 and "Deactivate" in response.json()["error"]["message"]


def test_unknown_object_is_a_404_in_the_error_shape(admin: Caller) -> None:
    response = admin.call("GET", "/api/v1/targets/999999/")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": response.json()["error"]["message"], "fields": {}}
    }


def test_audit_events_filter_by_decision_and_time(admin: Caller) -> None:
    create_target(admin)
    rows = admin.call("GET", "/api/v1/audit-events/?kind=change").json()["results"]
    assert rows and all(row["kind"] == "change" for row in rows)
    assert admin.call("GET", "/api/v1/audit-events/?kind=call").json()["results"] == []
    assert admin.call("GET", "/api/v1/audit-events/?since=2999-01-01T00:00:00Z").json()["results"] == []
    assert admin.call("GET", "/api/v1/audit-events/?since=yesterday").status_code == 400


def test_url_matching_no_route_answers_json_under_api_only(admin: Caller) -> None:
    response = admin.call("POST", "/api/v1/credentials/0.5/rotate/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert "text/html" in Client().get("/no-such-page").headers["Content-Type"]


def test_rule_with_a_malformed_method_or_path_names_the_field(admin: Caller) -> None:
    created = admin.call("POST", "/api/v1/credentials/", {"name": "agent"}).json()["credential"]
    bad = admin.call(
        "POST", "/api/v1/rules/", {"credential": created["id"], "method": "P@ST", "path": "tools"}
    )
    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"method", "path"}
    good = admin.call(
        "POST", "/api/v1/rules/", {"credential": created["id"], "method": " get ", "path": "/x"}
    )
    assert good.status_code == 201 and good.json()["method"] == "GET"
