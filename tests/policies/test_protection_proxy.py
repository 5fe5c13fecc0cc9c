"""Acceptance: response filters and redaction applied by the real gateway (uvicorn) in front of a real
MCP server, seen through the official SDK client and raw JSON-RPC (JSON bodies and event streams)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from django.core.exceptions import ValidationError

from audit.models import AuditEvent
from gateway.services import target_create
from policies.selectors import pseudonym_key
from policies.services import filter_create, redaction_policy_set
from tests.conftest import issue_credential, mcp_client, run
from tests.metering.conftest import post_call
from tests.metering.test_meters_proxy import legacy_session
from tests.upstream import JWT, PROFILE

SECRETS = ("card", "api_key", "jwt")


def ids_in(value: Any) -> list[Any]:
    """Every value held under an ``id`` key, at any depth."""
    if isinstance(value, dict):
        return [v for k, v in value.items() if k == "id"] + [i for v in value.values() for i in ids_in(v)]
    if isinstance(value, list):
        return [i for v in value for i in ids_in(v)]
    return []


def profile_events(gateway) -> list[AuditEvent]:
    gateway.flush_audit()
    return [
        e for e in AuditEvent.objects.filter(kind="call").order_by("created_at", "id") if e.tool == "profile"
    ]


def call_profile_with_sdk(url: str, token: str) -> tuple[Any, Any]:
    async def agent() -> tuple[Any, Any]:
        async with mcp_client(url, token) as client:
            result = await client.call_tool("profile", {})
            return result.structured_content, orjson.loads(result.content[0].text)

    return run(agent())


def test_tenant_and_credential_filters_leave_neither_field_in_structured_or_text_content(
    gateway, tenant, target
):
    issued = issue_credential(tenant, target, "POST /tools/*")
    every_id = filter_create(tenant=tenant, paths=["$..id"])
    owner = filter_create(tenant=tenant, credential=issued.credential, paths=["$.owner"])

    structured, text = call_profile_with_sdk(gateway.proxy_url("docs"), issued.token)

    for document in (structured, text):
        assert ids_in(document) == [] and "owner" not in document
        assert [item["name"] for item in document["items"]] == ["first", "second"]
    [event] = profile_events(gateway)
    removed = {f["filter"]: f["removed"] for f in event.protections["filters"]}
    assert removed == {every_id.pk: 8, owner.pk: 2}  # 4 ids, then the owner, in each of the two forms


def test_a_filter_of_another_target_or_another_credential_does_not_apply(gateway, tenant, target, upstream):
    issued = issue_credential(tenant, target, "POST /tools/*")
    other_agent = issue_credential(tenant, target, "POST /tools/*", name="other-agent")
    other = target_create(tenant=tenant, slug="other", upstream_url=upstream.url)
    filter_create(tenant=tenant, target=other, paths=["$.items"])
    filter_create(tenant=tenant, credential=other_agent.credential, paths=["$.owner"])

    structured, text = call_profile_with_sdk(gateway.proxy_url("docs"), issued.token)

    assert structured == PROFILE and text == PROFILE
    assert profile_events(gateway)[0].protections == {}


def test_cards_keys_and_tokens_are_masked_and_a_luhn_invalid_number_is_not(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/*")
    policy = redaction_policy_set(tenant=tenant, target=target, detectors=SECRETS, action="mask")

    reply = post_call(gateway.proxy_url("docs"), issued.token, tool="profile")

    assert reply.status_code == 200
    result = reply.json()["result"]
    for document in (result["structuredContent"], orjson.loads(result["content"][0]["text"])):
        assert document["card"] == "[REDACTED:CARD]"
        assert document["aws"] == "[REDACTED:API_KEY]"
        assert document["session"] == "[REDACTED:JWT]"
        assert document["order_number"] == PROFILE["order_number"]
    assert JWT not in reply.text and PROFILE["card"] not in reply.text
    [event] = profile_events(gateway)
    assert event.protections["redactions"] == [
        {
            "policy": policy.pk,
            "mode": "enforce",
            "action": "mask",
            "kinds": {"CARD": 2, "API_KEY": 2, "JWT": 2},
        }
    ]
    assert PROFILE["card"] not in orjson.dumps(event.protections).decode()


def test_an_event_stream_reply_is_filtered_and_redacted_event_by_event(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/*")
    filter_create(tenant=tenant, paths=["$..id", "$.owner"])
    redaction_policy_set(tenant=tenant, detectors=SECRETS, action="mask")
    url = gateway.proxy_url("docs")
    http, session = legacy_session(url, issued.token)
    call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "profile", "arguments": {}}}
    try:
        reply = http.post(url, content=orjson.dumps(call), headers=session)
    finally:
        http.close()

    assert reply.headers["content-type"].startswith("text/event-stream")
    [data] = [line[5:].strip() for line in reply.text.splitlines() if line.startswith("data:")]
    result = orjson.loads(data)["result"]
    for document in (result["structuredContent"], orjson.loads(result["content"][0]["text"])):
        assert ids_in(document) == [] and "owner" not in document
        assert document["card"] == "[REDACTED:CARD]" and document["order_number"] == PROFILE["order_number"]
    [event] = profile_events(gateway)
    assert event.protections["filters"][0]["removed"] == 10
    assert event.protections["redactions"][0]["kinds"] == {"CARD": 2, "API_KEY": 2, "JWT": 2}


def test_monitor_mode_changes_nothing_but_counts(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/*")
    watched = filter_create(tenant=tenant, paths=["$..id"], mode="monitor")
    redaction_policy_set(tenant=tenant, detectors=SECRETS, action="mask", mode="monitor")

    reply = post_call(gateway.proxy_url("docs"), issued.token, tool="profile")

    result = reply.json()["result"]
    assert result["structuredContent"] == PROFILE and orjson.loads(result["content"][0]["text"]) == PROFILE
    [event] = profile_events(gateway)
    assert event.protections["filters"] == [{"filter": watched.pk, "mode": "monitor", "removed": 8}]
    assert event.protections["redactions"][0]["mode"] == "monitor"
    assert event.protections["redactions"][0]["kinds"] == {"CARD": 2, "API_KEY": 2, "JWT": 2}


def test_a_call_outside_the_filter_route_is_neither_filtered_nor_counted(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/*")
    filter_create(tenant=tenant, paths=["$..id"], route="POST /tools/search")

    reply = post_call(gateway.proxy_url("docs"), issued.token, tool="profile")

    assert reply.json()["result"]["structuredContent"] == PROFILE
    assert profile_events(gateway)[0].protections == {}


@pytest.mark.django_db
def test_an_invalid_path_is_refused_with_the_parser_message(tenant):
    with pytest.raises(ValidationError) as caught:
        filter_create(tenant=tenant, paths=["owner"])
    assert "must start at the document root" in str(caught.value)


@pytest.mark.django_db
def test_a_filter_scoped_to_both_a_target_and_a_credential_is_refused(tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/*")
    with pytest.raises(ValidationError) as caught:
        filter_create(tenant=tenant, target=target, credential=issued.credential, paths=["$.id"])
    assert "not both" in str(caught.value)


@pytest.mark.django_db
def test_an_unknown_detector_is_refused_naming_the_valid_ones(tenant):
    with pytest.raises(ValidationError) as caught:
        redaction_policy_set(tenant=tenant, detectors=["passport"], action="mask")
    assert "valid names" in str(caught.value) and "email" in str(caught.value)


def test_a_filter_added_after_a_warm_call_applies_to_the_next_call(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/*")
    url = gateway.proxy_url("docs")
    assert post_call(url, issued.token, tool="profile").json()["result"]["structuredContent"] == PROFILE

    filter_create(tenant=tenant, target=target, paths=["$.owner"])

    assert "owner" not in post_call(url, issued.token, tool="profile").json()["result"]["structuredContent"]


def test_pseudonyms_are_stable_within_a_tenant_and_differ_across_tenants(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/*")
    redaction_policy_set(tenant=tenant, detectors=["email"], action="pseudonym")
    url = gateway.proxy_url("docs")

    first, second = (post_call(url, issued.token, tool="profile").json()["result"] for _ in range(2))

    owner = first["structuredContent"]["owner"]["email"]
    assert owner.startswith("[EMAIL:") and owner == second["structuredContent"]["owner"]["email"]
    assert pseudonym_key(tenant.pk) != pseudonym_key(tenant.pk + 1)
