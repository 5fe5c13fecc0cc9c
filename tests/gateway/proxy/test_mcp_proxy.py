"""Acceptance: a stock MCP client through the gateway (uvicorn) to a real MCP server."""

from __future__ import annotations

import time

import httpx2
import orjson
import pytest
from mcp.shared.exceptions import MCPError

from audit.models import AuditEvent
from gateway.services import credential_revoke
from tests.conftest import UPSTREAM_SECRET, issue_credential, mcp_client, run

JSONRPC_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def audit_events(gateway) -> list[AuditEvent]:
    gateway.flush_audit()
    return list(AuditEvent.objects.filter(kind="call").order_by("created_at", "id"))


def call(name: str, arguments: dict | None = None, request_id: int = 7) -> bytes:
    params = {"name": name, "arguments": arguments or {}}
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params})


def post(url: str, body: bytes, token: str | None, **headers: str) -> httpx2.Response:
    all_headers = {**JSONRPC_HEADERS, **headers}
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    return httpx2.post(url, content=body, headers=all_headers, timeout=10)


def test_tools_list_shows_only_the_tools_the_credential_may_call(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search", "POST /tools/slow_*")

    async def agent() -> list[str]:
        async with mcp_client(gateway.proxy_url("docs"), issued.token) as client:
            return [tool.name for tool in (await client.list_tools()).tools]

    assert sorted(run(agent())) == ["search", "slow_count"]


def test_resources_and_prompts_lists_show_only_what_may_be_called(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /prompts/summarize")

    async def agent() -> tuple[list[str], list[str]]:
        async with mcp_client(gateway.proxy_url("docs"), issued.token) as client:
            prompts = [p.name for p in (await client.list_prompts()).prompts]
            resources = [str(r.uri) for r in (await client.list_resources()).resources]
            return prompts, resources

    assert run(agent()) == (["summarize"], [])


def test_allowed_call_returns_the_upstreams_result_unchanged(gateway, tenant, target, upstream):
    issued = issue_credential(tenant, target, "POST /tools/search")

    async def through(url: str, token: str | None):
        async with mcp_client(url, token) as client:
            return await client.call_tool("search", {"query": "gateways"})

    via_gateway = run(through(gateway.proxy_url("docs"), issued.token))
    direct = run(through(upstream.url, None))
    assert (
        via_gateway.structured_content
        == direct.structured_content
        == {
            "hits": ["result for gateways"],
            "usage": {"total_tokens": 400},
        }
    )
    assert via_gateway.content == direct.content
    assert not via_gateway.is_error


def test_denied_call_is_refused_with_the_rule_metadata(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    rule = issued.credential.rules.get()

    async def agent() -> MCPError:
        async with mcp_client(gateway.proxy_url("docs"), issued.token) as client:
            with pytest.raises(MCPError) as caught:
                await client.call_tool("delete_all", {})
            return caught.value

    error = run(agent())
    assert "no rule allows POST /tools/delete_all" in error.message
    assert error.data == {
        "route": "POST /tools/delete_all",
        "credential_id": issued.credential.id,
        "rules": [{"id": rule.id, "method": "POST", "path": "/tools/search", "description": ""}],
    }

    response = post(gateway.proxy_url("docs"), call("delete_all", request_id=42), issued.token)
    assert response.status_code == 400
    body = response.json()
    assert body["id"] == 42
    assert body["error"]["data"]["route"] == "POST /tools/delete_all"


def test_denied_call_is_audited_once_as_denied(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    post(gateway.proxy_url("docs"), call("delete_all"), issued.token)
    [event] = audit_events(gateway)
    assert (event.decision, event.status_code, event.tool, event.credential_id) == (
        "denied",
        400,
        "delete_all",
        issued.credential.id,
    )
    assert event.upstream_status is None
    assert "POST /tools/delete_all" in event.reason


def test_revoked_credential_is_refused_on_next_call_while_another_agent_keeps_working(
    gateway, tenant, target
):
    first = issue_credential(tenant, target, "POST /tools/search", name="first")
    second = issue_credential(tenant, target, "POST /tools/search", name="second")

    async def search(token: str):
        async with mcp_client(gateway.proxy_url("docs"), token) as client:
            return await client.call_tool("search", {"query": "x"})

    assert not run(search(first.token)).is_error
    credential_revoke(credential=first.credential)

    response = post(gateway.proxy_url("docs"), call("search", {"query": "x"}), first.token)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["message"] == "Invalid or missing credential"
    assert not run(search(second.token)).is_error
    refused = [e for e in audit_events(gateway) if e.status_code == 401]
    assert [(e.decision, e.credential_id, e.reason) for e in refused] == [
        ("denied", first.credential.id, "Credential revoked")
    ]


def test_upstream_sees_its_own_credential_and_never_the_agents(gateway, tenant, target, upstream):
    issued = issue_credential(tenant, target, "POST /tools/search")
    upstream.seen_headers.clear()

    async def agent() -> None:
        async with mcp_client(
            gateway.proxy_url("docs"), issued.token, headers={"X-API-Key": issued.token}
        ) as client:
            await client.call_tool("search", {"query": "x"})

    run(agent())
    assert upstream.seen_headers
    for headers in upstream.seen_headers:
        assert headers["authorization"] == f"Bearer {UPSTREAM_SECRET}"
        assert "x-api-key" not in headers
        assert all(issued.token not in value for value in headers.values())


def test_agent_never_sees_the_upstream_secret(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    response = post(gateway.proxy_url("docs"), call("delete_all"), issued.token)
    assert UPSTREAM_SECRET not in response.text
    assert all(UPSTREAM_SECRET not in value for value in response.headers.values())


def test_progress_notifications_stream_before_the_final_result(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/slow_count")
    arrivals: list[tuple[str, float]] = []

    async def agent() -> None:
        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            arrivals.append((f"progress {progress:g}", time.monotonic()))

        async with mcp_client(gateway.proxy_url("docs"), issued.token) as client:
            result = await client.call_tool("slow_count", {"steps": 3}, progress_callback=on_progress)
            arrivals.append((result.content[0].text, time.monotonic()))

    run(agent())
    assert [label for label, _ in arrivals] == ["progress 1", "progress 2", "progress 3", "counted to 3"]
    # The tool sleeps 0.3 s after each step: buffering would deliver everything at once.
    assert arrivals[-1][1] - arrivals[0][1] > 0.6


def test_session_id_survives_the_round_trip_and_is_bound_to_its_credential(gateway, tenant, target, upstream):
    owner = issue_credential(tenant, target, "POST /tools/search", name="owner")
    intruder = issue_credential(tenant, target, "POST /tools/search", name="intruder")
    upstream.seen_headers.clear()
    seen_by_agent: list[str] = []

    async def log_response(response: httpx2.Response) -> None:
        if "mcp-session-id" in response.headers:
            seen_by_agent.append(response.headers["mcp-session-id"])

    async def agent() -> None:
        async with httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {owner.token}"}, event_hooks={"response": [log_response]}
        ) as http:
            from mcp import Client
            from mcp.client.streamable_http import streamable_http_client

            async with Client(
                streamable_http_client(gateway.proxy_url("docs"), http_client=http), mode="legacy"
            ) as c:
                await c.call_tool("search", {"query": "one"})
                await c.call_tool("search", {"query": "two"})

    run(agent())
    upstream_ids = {h["mcp-session-id"] for h in upstream.seen_headers if "mcp-session-id" in h}
    assert len(upstream_ids) == 1  # every call after initialize reached the same upstream session
    assert len(set(seen_by_agent)) == 1
    agent_id = seen_by_agent[0]
    assert agent_id not in upstream_ids  # the agent holds a gateway-bound id, not the upstream's

    stolen = post(
        gateway.proxy_url("docs"),
        call("search", {"query": "x"}),
        intruder.token,
        **{"Mcp-Session-Id": agent_id},
    )
    assert stolen.status_code == 403
    assert "another credential" in stolen.json()["error"]["message"]
    [refused] = [e for e in audit_events(gateway) if e.status_code == 403]
    assert (refused.decision, refused.credential_id, refused.upstream_status) == (
        "denied",
        intruder.credential.id,
        None,
    )


def test_unreachable_upstream_gives_502_with_a_jsonrpc_error(gateway, tenant):
    from gateway.services import target_create
    from tests.servers import free_port

    down = target_create(tenant=tenant, slug="down", upstream_url=f"http://127.0.0.1:{free_port()}/mcp")
    issued = issue_credential(tenant, down, "POST /tools/search")
    response = post(gateway.proxy_url("down"), call("search", {"query": "x"}, request_id=5), issued.token)
    assert response.status_code == 502
    body = response.json()
    assert body["id"] == 5 and "unreachable" in body["error"]["message"]
    [event] = audit_events(gateway)
    assert (event.decision, event.status_code) == ("error", 502)


def test_slow_upstream_gives_504(gateway, tenant, upstream):
    from gateway.services import target_create

    slow = target_create(tenant=tenant, slug="slow", upstream_url=upstream.url, timeout_seconds=0.2)
    issued = issue_credential(tenant, slow, "POST /tools/slow_count")

    async def agent() -> MCPError:
        async with mcp_client(gateway.proxy_url("slow"), issued.token, mode="2026-07-28") as client:
            with pytest.raises(MCPError) as caught:
                await client.call_tool("slow_count", {"steps": 3})
            return caught.value

    error = run(agent())
    assert "timed out" in error.message


def test_oversized_body_gives_413(gateway, tenant, target, settings):
    issued = issue_credential(tenant, target, "POST /tools/search")
    body = call("search", {"query": "x" * (1024 * 1024 + 1)})
    response = post(gateway.proxy_url("docs"), body, issued.token)
    assert response.status_code == 413
    assert "exceeds the limit" in response.json()["error"]["message"]
    [event] = audit_events(gateway)
    assert (event.decision, event.status_code) == ("error", 413)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", -32700),
        (b'{"id": 1, "method": "tools/call"}', -32600),
        (b"[]", -32600),
        (b'"text"', -32600),
    ],
)
def test_malformed_json_or_jsonrpc_gives_400_with_a_jsonrpc_error(gateway, tenant, target, body, code):
    issued = issue_credential(tenant, target, "POST /tools/search")
    response = post(gateway.proxy_url("docs"), body, issued.token)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    [event] = audit_events(gateway)
    assert (event.decision, event.status_code) == ("error", 400)


def test_tools_call_without_a_name_is_invalid_params(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/**")
    body = orjson.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"arguments": {}}})
    response = post(gateway.proxy_url("docs"), body, issued.token)
    assert response.status_code == 400
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": 3,
        "error": {"code": -32602, "message": 'Invalid params: tools/call needs a string "params.name"'},
    }


def test_unknown_target_is_404(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    response = post(gateway.proxy_url("nope"), call("search"), issued.token)
    assert response.status_code == 404
    [event] = audit_events(gateway)
    assert (event.decision, event.status_code, event.target_slug) == ("error", 404, "nope")


@pytest.mark.parametrize("token", [None, "mgw_unknown123_xxxxxxxx", "garbage"])
def test_missing_or_unknown_token_is_401_with_www_authenticate(gateway, tenant, target, token):
    response = post(gateway.proxy_url("docs"), call("search"), token)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    [event] = audit_events(gateway)
    assert (event.decision, event.credential_id) == ("denied", None)


def test_token_is_accepted_in_x_api_key(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    response = post(gateway.proxy_url("docs"), call("delete_all"), None, **{"X-API-Key": issued.token})
    assert response.status_code == 400  # authenticated, then denied by scope: not 401


def test_expired_credential_is_401(gateway, tenant, target):
    from datetime import timedelta

    from django.utils import timezone

    issued = issue_credential(tenant, target, "POST /tools/search")
    issued.credential.expires_at = timezone.now() - timedelta(seconds=1)
    issued.credential.save()
    response = post(gateway.proxy_url("docs"), call("search"), issued.token)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid or missing credential"  # not "expired"


def test_credential_not_bound_to_the_target_is_403(gateway, tenant, target):
    issued = issue_credential(tenant, None, "POST /tools/search")
    response = post(gateway.proxy_url("docs"), call("search"), issued.token)
    assert response.status_code == 403
    assert "not allowed to use target 'docs'" in response.json()["error"]["message"]


def test_foreign_origin_is_403_and_allowed_origin_passes(gateway, tenant, target):
    target.allowed_origins = "https://app.example.com"
    target.save()
    issued = issue_credential(tenant, target, "POST /tools/search")
    refused = post(gateway.proxy_url("docs"), call("delete_all"), issued.token, Origin="https://evil.example")
    assert refused.status_code == 403
    passed = post(
        gateway.proxy_url("docs"), call("delete_all"), issued.token, Origin="https://app.example.com"
    )
    assert passed.status_code == 400  # past the origin check, then denied by scope


def test_batch_with_a_denied_item_is_refused_item_by_item(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    batch = (
        b"[" + call("search", {"query": "x"}, request_id=1) + b"," + call("delete_all", request_id=2) + b"]"
    )
    response = post(gateway.proxy_url("docs"), batch, issued.token)
    assert response.status_code == 400
    first, second = response.json()
    assert first["id"] == 1 and first["error"]["message"].startswith("Not run")
    assert second["id"] == 2 and second["error"]["data"]["route"] == "POST /tools/delete_all"
    [event] = audit_events(gateway)
    assert event.decision == "denied" and event.tool == "search, delete_all"


def test_mcp_method_header_that_contradicts_the_body_is_rejected(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    response = post(
        gateway.proxy_url("docs"),
        call("delete_all"),
        issued.token,
        **{"Mcp-Method": "tools/call", "Mcp-Name": "search"},
    )
    assert response.status_code == 400
    assert "Mcp-Name header does not match" in response.json()["error"]["message"]


def test_every_call_is_audited_with_request_id_and_session(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")

    async def agent() -> None:
        async with mcp_client(gateway.proxy_url("docs"), issued.token) as client:
            await client.call_tool("search", {"query": "x"})

    run(agent())
    events = audit_events(gateway)
    methods = [e.jsonrpc_method or e.http_method for e in events]
    # in call order; the session's GET stream, opened meanwhile, may come before the tool call
    assert methods[:2] == ["initialize", "notifications/initialized"]
    assert [m for m in methods if m != "GET"][:3] == ["initialize", "notifications/initialized", "tools/call"]
    tool_call = next(e for e in events if e.jsonrpc_method == "tools/call")
    assert tool_call.decision == "allowed" and tool_call.tool == "search"
    assert tool_call.upstream_status == 200 and tool_call.response_bytes > 0 and tool_call.request_bytes > 0
    assert tool_call.session_id and tool_call.jsonrpc_id
    assert len(tool_call.request_id) == 32
    assert all(issued.token not in str(vars(e)) for e in events)


def test_x_request_id_is_taken_from_the_request_and_echoed(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    response = post(
        gateway.proxy_url("docs"), call("delete_all"), issued.token, **{"X-Request-ID": "trace-123"}
    )
    assert response.headers["X-Request-ID"] == "trace-123"
    [event] = audit_events(gateway)
    assert event.request_id == "trace-123"


def test_no_token_or_upstream_secret_ever_reaches_the_logs(gateway, tenant, target, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    issued = issue_credential(tenant, target, "POST /tools/search")
    post(gateway.proxy_url("docs"), call("search", {"query": "x"}), issued.token)
    post(gateway.proxy_url("docs"), call("delete_all"), issued.token)
    post(gateway.proxy_url("docs"), call("search"), issued.token[:-2] + "xx")
    gateway.flush_audit()
    assert caplog.records  # the gateway and its libraries did log
    assert issued.token not in caplog.text
    assert issued.token[:-2] not in caplog.text
    assert UPSTREAM_SECRET not in caplog.text


def test_host_not_in_allowed_hosts_is_refused(gateway, tenant, target, settings):
    issued = issue_credential(tenant, target, "POST /tools/search")
    from gateway.proxy.runtime import runtime_for_loop

    runtime = runtime_for_loop(gateway.server.loop)
    if runtime is None:
        post(gateway.proxy_url("docs"), call("delete_all"), issued.token)
        runtime = runtime_for_loop(gateway.server.loop)
    runtime.allowed_hosts = ["gateway.example.com"]
    response = post(gateway.proxy_url("docs"), call("delete_all"), issued.token)
    assert response.status_code == 400
    assert "Invalid Host header" in response.json()["error"]["message"]
    ok = post(gateway.proxy_url("docs"), call("delete_all"), issued.token, Host="gateway.example.com")
    assert ok.status_code == 400 and "Denied by policy" in ok.json()["error"]["message"]


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])  # event-stream and JSON listings
def test_listing_is_trimmed_in_both_protocol_generations(gateway, tenant, target, mode):
    issued = issue_credential(tenant, target, "POST /tools/delete_all")

    async def agent() -> list[str]:
        async with mcp_client(gateway.proxy_url("docs"), issued.token, mode=mode) as client:
            return [tool.name for tool in (await client.list_tools()).tools]

    assert run(agent()) == ["delete_all"]


def test_a_browser_client_from_an_allowed_origin_gets_cors(gateway, tenant, target):
    target.allowed_origins = "https://app.example.com"
    target.save()
    issued = issue_credential(tenant, target, "POST /tools/search")
    url = gateway.proxy_url("docs")

    preflight = httpx2.options(
        url,
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, mcp-session-id",
        },
    )
    assert preflight.status_code == 204 and preflight.content == b""
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "Mcp-Session-Id" in preflight.headers["Access-Control-Allow-Headers"]
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]

    reply = post(url, call("delete_all"), issued.token, Origin="https://app.example.com")
    assert reply.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "Mcp-Session-Id" in reply.headers["Access-Control-Expose-Headers"]

    foreign = httpx2.options(
        url, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert foreign.status_code == 403 and "access-control-allow-origin" not in foreign.headers
    no_origin = post(url, call("delete_all"), issued.token)
    assert "access-control-allow-origin" not in no_origin.headers
