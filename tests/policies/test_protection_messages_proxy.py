"""Acceptance: redaction reaches every message an MCP upstream sends the agent, not only results: JSON-RPC
errors, log notifications sent while a call runs, and the session's GET stream (server-initiated
messages and replies replayed on resumption). Real gateway (uvicorn), real upstreams, SDK client."""

from __future__ import annotations

from typing import Any

import httpx2
import orjson
import pytest
from mcp.shared.exceptions import MCPError

from audit.models import AuditEvent
from gateway.services import target_create
from policies.services import filter_create, redaction_policy_set
from tests.conftest import issue_credential, mcp_client, run
from tests.metering.conftest import post_call
from tests.servers import ServerThread
from tests.upstream import CUSTOMER_EMAIL, PROFILE, answer_initialize, answer_lifespan, send_reply

PII = ("email", "card")


def events_of(gateway, **match: str) -> list[AuditEvent]:
    gateway.flush_audit()
    return list(AuditEvent.objects.filter(kind="call", **match).order_by("created_at", "id"))


def test_an_upstream_error_naming_a_customer_reaches_the_agent_masked_and_is_counted(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/*")
    policy = redaction_policy_set(tenant=tenant, detectors=PII, action="mask")

    async def agent() -> MCPError:
        async with mcp_client(gateway.proxy_url("docs"), issued.token) as client:
            with pytest.raises(MCPError) as caught:
                await client.call_tool("charge", {})
            return caught.value

    error = run(agent())

    assert error.code == -32001
    assert error.message == "card [REDACTED:CARD] of [REDACTED:EMAIL] was declined"
    assert error.data == {"customer": "[REDACTED:EMAIL]", "retry": False}
    [event] = events_of(gateway, tool="charge")
    assert event.protections["redactions"] == [
        {"policy": policy.pk, "mode": "enforce", "action": "mask", "kinds": {"CARD": 1, "EMAIL": 2}}
    ]
    assert CUSTOMER_EMAIL not in orjson.dumps(event.protections).decode()


def test_an_upstream_error_under_monitor_mode_is_unchanged_and_counted(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/*")
    redaction_policy_set(tenant=tenant, detectors=PII, action="mask", mode="monitor")

    reply = post_call(gateway.proxy_url("docs"), issued.token, tool="charge")

    error = reply.json()["error"]
    assert error["message"] == f"card {PROFILE['card']} of {CUSTOMER_EMAIL} was declined"
    assert error["data"] == {"customer": CUSTOMER_EMAIL, "retry": False}
    [event] = events_of(gateway, tool="charge")
    [redaction] = event.protections["redactions"]
    assert redaction["mode"] == "monitor" and redaction["kinds"] == {"CARD": 1, "EMAIL": 2}


def test_a_log_message_sent_while_a_call_runs_reaches_the_agent_masked(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/audited_read")
    redaction_policy_set(tenant=tenant, target=target, detectors=PII, action="mask")
    logged: list[Any] = []

    async def on_log(params: Any) -> None:
        logged.append(params)

    async def agent() -> str:
        async with mcp_client(gateway.proxy_url("docs"), issued.token, logging_callback=on_log) as client:
            result = await client.call_tool("audited_read", {})
            return result.content[0].text

    assert run(agent()) == "read"
    assert [(params.level, params.data) for params in logged] == [("info", "record of [REDACTED:EMAIL] read")]
    [event] = events_of(gateway, tool="audited_read")
    assert event.protections["redactions"][0]["kinds"] == {"EMAIL": 1}


def test_a_log_message_of_a_call_no_protection_applies_to_passes_unparsed(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/audited_read")
    redaction_policy_set(
        tenant=tenant, target=target, route="POST /tools/profile", detectors=PII, action="mask"
    )
    logged: list[Any] = []

    async def on_log(params: Any) -> None:
        logged.append(params.data)

    async def agent() -> None:
        async with mcp_client(gateway.proxy_url("docs"), issued.token, logging_callback=on_log) as client:
            await client.call_tool("audited_read", {})

    run(agent())

    assert logged == [f"record of {CUSTOMER_EMAIL} read"]
    assert events_of(gateway, tool="audited_read")[0].protections == {}


# The session's GET stream, from a small hand-written upstream: the SDK server only sends on it what a
# concurrent call triggers, which makes the order of events a race. This one opens a session on POST
# and answers GET with what a resumed stream carries: a server-initiated log message and the replayed
# reply to an earlier tools/call.
UPSTREAM_SESSION = "upstream-session-1"
STANDALONE_LOG = {
    "jsonrpc": "2.0",
    "method": "notifications/message",
    "params": {"level": "info", "data": {"text": f"export for {CUSTOMER_EMAIL} ready"}},
}
REPLAYED_RESULT = {
    "jsonrpc": "2.0",
    "id": 3,
    "result": {
        "structuredContent": PROFILE,
        "content": [{"type": "text", "text": orjson.dumps(PROFILE).decode()}],
    },
}
GET_STREAM = (
    b"id: 1\ndata: \n\n"  # a priming event, with no data
    + b"id: 2\nevent: message\ndata: "
    + orjson.dumps(STANDALONE_LOG)
    + b"\n\nid: 3\nevent: message\ndata: "
    + orjson.dumps(REPLAYED_RESULT)
    + b"\n\n"
)


async def session_stream_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if await answer_lifespan(scope, receive, send):
        return
    if scope["method"] == "POST":
        await answer_initialize(receive, send, UPSTREAM_SESSION)
        return
    await send_reply(send, GET_STREAM, content_type=b"text/event-stream")


@pytest.fixture(scope="module")
def stream_upstream():
    server = ServerThread(session_stream_app).start()
    yield server
    server.stop()


def open_session_stream(gateway, token: str) -> httpx2.Response:
    url = gateway.proxy_url("streams")
    auth = {"Authorization": f"Bearer {token}"}
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}}
    opened = httpx2.post(
        url,
        content=orjson.dumps(init),
        headers={**auth, "Content-Type": "application/json", "Accept": "application/json, text/event-stream"},
        timeout=10,
    )
    session = {"Mcp-Session-Id": opened.headers["mcp-session-id"], "Last-Event-ID": "0"}
    return httpx2.get(url, headers={**auth, **session, "Accept": "text/event-stream"}, timeout=10)


def data_events(stream: str) -> list[Any]:
    return [
        orjson.loads(line[5:])
        for line in stream.splitlines()
        if line.startswith("data:") and line[5:].strip()
    ]


def test_the_session_stream_masks_server_messages_and_filters_replayed_results(
    gateway, tenant, stream_upstream
):
    streams = target_create(tenant=tenant, slug="streams", upstream_url=f"{stream_upstream.url}/mcp")
    issued = issue_credential(tenant, streams, "POST /tools/*")
    # Scoped to one tool's route: the replayed reply may answer that call, so the stream gets it too.
    owner = filter_create(tenant=tenant, target=streams, route="POST /tools/profile", paths=["$.owner"])
    redaction_policy_set(tenant=tenant, detectors=PII, action="mask")

    reply = open_session_stream(gateway, issued.token)

    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/event-stream")
    log, replayed = data_events(reply.text)
    assert log == {
        **STANDALONE_LOG,
        "params": {"level": "info", "data": {"text": "export for [REDACTED:EMAIL] ready"}},
    }
    result = replayed["result"]
    for document in (result["structuredContent"], orjson.loads(result["content"][0]["text"])):
        assert "owner" not in document and document["card"] == "[REDACTED:CARD]"
    assert replayed["id"] == 3 and "id: 3" in reply.text  # the stream's event ids are kept for resumption
    [event] = events_of(gateway, http_method="GET", target_slug="streams")
    assert event.protections["filters"] == [{"filter": owner.pk, "mode": "enforce", "removed": 2}]
    assert event.protections["redactions"][0]["kinds"] == {"EMAIL": 1, "CARD": 2}


def test_a_session_stream_nothing_applies_to_is_relayed_byte_for_byte(gateway, tenant, stream_upstream):
    streams = target_create(tenant=tenant, slug="streams", upstream_url=f"{stream_upstream.url}/mcp")
    issued = issue_credential(tenant, streams, "POST /tools/*")
    other = target_create(tenant=tenant, slug="other", upstream_url=f"{stream_upstream.url}/mcp")
    redaction_policy_set(tenant=tenant, target=other, detectors=PII, action="mask")

    reply = open_session_stream(gateway, issued.token)

    assert reply.content == GET_STREAM
    assert events_of(gateway, http_method="GET", target_slug="streams")[0].protections == {}
