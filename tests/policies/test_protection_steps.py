"""The protection steps on a hand-built context: what they select, and that an unprotectable reply is
refused rather than passed through."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from gateway.proxy.context import ProxyContext
from gateway.proxy.errors import ResponseUnprotectable
from gateway.proxy.jsonrpc import Route
from policies.compiler import (
    CompiledCredential,
    ScopedFilter,
    ScopedRedactor,
    compile_route_scope,
)
from policies.content import compile_filter
from policies.redaction import Redactor, resolve_detectors
from policies.steps import protect_response, select_protections
from tests.factories import compiled_credential, compiled_target, proxy_context

PROFILE_CALL = Route("POST", "/tools/profile", jsonrpc_method="tools/call", name="profile", id=1, has_id=True)
SEARCH_CALL = Route("POST", "/tools/search", jsonrpc_method="tools/call", name="search", id=2, has_id=True)


def credential(route: str = "", target_id: int | None = None) -> CompiledCredential:
    scope = compile_route_scope(route)
    return compiled_credential(
        filters=(ScopedFilter(target_id, scope, compile_filter(filter_id=5, paths=["$..id"])),),
        redactors=(ScopedRedactor(6, target_id, scope, Redactor(resolve_detectors("email"))),),
    )


def context(cred: CompiledCredential, *routes: Route) -> ProxyContext:
    return proxy_context(
        target=compiled_target(),
        credential=cred,
        routes=list(routes),
        messages=[{"id": r.id} for r in routes],
    )


def reply(result: Any, msg_id: Any = 1) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": msg_id, "result": result})


def test_a_call_no_protection_applies_to_is_not_parsed():
    ctx = context(credential("POST /tools/profile"), SEARCH_CALL)
    asyncio.run(select_protections(ctx))
    assert ctx.protections is None and ctx.inspect_response is False


def test_a_protection_of_another_target_is_not_selected():
    ctx = context(credential(target_id=2), PROFILE_CALL)
    asyncio.run(select_protections(ctx))
    assert ctx.protections is None and ctx.inspect_response is False


def test_a_matching_call_asks_for_the_whole_reply_and_gets_it_filtered_then_redacted():
    ctx = context(credential("POST /tools/profile"), PROFILE_CALL, SEARCH_CALL)
    asyncio.run(select_protections(ctx))
    assert ctx.inspect_response is True
    ctx.response_body = orjson.dumps(
        [
            {"jsonrpc": "2.0", "id": 1, "result": {"structuredContent": {"id": "x", "mail": "a@b.example"}}},
            {"jsonrpc": "2.0", "id": 2, "result": {"structuredContent": {"id": "y", "mail": "c@d.example"}}},
        ]
    )
    asyncio.run(protect_response(ctx))
    profile, search = orjson.loads(ctx.response_body)
    assert profile["result"]["structuredContent"] == {"mail": "[REDACTED:EMAIL]"}
    assert search["result"]["structuredContent"] == {
        "id": "y",
        "mail": "c@d.example",
    }  # its route matches no protection
    assert ctx.protection_tally is not None
    assert ctx.protection_tally.as_audit()["filters"] == [{"filter": 5, "mode": "enforce", "removed": 1}]


def test_a_reply_that_is_not_json_is_refused_not_passed_through():
    ctx = context(credential(), PROFILE_CALL)
    asyncio.run(select_protections(ctx))
    ctx.response_body = b"<html>a@b.example</html>"
    with pytest.raises(ResponseUnprotectable) as caught:
        asyncio.run(protect_response(ctx))
    assert caught.value.status == 502 and "withheld" in caught.value.message


def test_a_result_nested_too_deeply_to_redact_is_refused():
    ctx = context(credential(), PROFILE_CALL)
    asyncio.run(select_protections(ctx))
    deep: Any = "a@b.example"
    for _ in range(100):
        deep = [deep]
    ctx.response_body = reply({"structuredContent": {"deep": deep}})
    with pytest.raises(ResponseUnprotectable):
        asyncio.run(protect_response(ctx))


def test_a_streamed_body_of_another_type_is_refused():
    async def chunks() -> AsyncIterator[bytes]:
        yield b"a@b.example"

    ctx = context(credential(), PROFILE_CALL)
    asyncio.run(select_protections(ctx))
    ctx.response_stream = chunks()
    ctx.response_headers = {"content-type": "application/octet-stream"}
    with pytest.raises(ResponseUnprotectable):
        asyncio.run(protect_response(ctx))


def test_an_unprotectable_event_becomes_a_json_rpc_error_event_and_is_audited_as_an_error():
    async def chunks() -> AsyncIterator[bytes]:
        yield b"event: message\ndata: " + reply({"structuredContent": {"id": "x"}}) + b"\n\n"
        yield b"event: message\ndata: not json a@b.example\n\n"

    async def read(stream: AsyncIterator[bytes]) -> bytes:
        return b"".join([chunk async for chunk in stream])

    ctx = context(credential(), PROFILE_CALL)
    asyncio.run(select_protections(ctx))
    ctx.response_stream = chunks()
    ctx.response_headers = {"content-type": "text/event-stream"}
    asyncio.run(protect_response(ctx))
    assert ctx.response_stream is not None
    body = asyncio.run(read(ctx.response_stream))
    assert b"a@b.example" not in body and b'"id":"x"' not in body
    assert b'"code":-32014' in body
    assert ctx.decision == "error" and "withheld" in ctx.reason


def test_a_result_answering_no_request_of_the_call_gets_every_selected_protection():
    ctx = context(credential("POST /tools/profile"), PROFILE_CALL, SEARCH_CALL)
    asyncio.run(select_protections(ctx))
    ctx.response_body = reply({"structuredContent": {"id": "x", "mail": "a@b.example"}}, msg_id=99)
    asyncio.run(protect_response(ctx))
    assert orjson.loads(ctx.response_body)["result"]["structuredContent"] == {"mail": "[REDACTED:EMAIL]"}


def test_a_plain_http_reply_is_protected_as_one_document():
    ctx = context(credential(), Route("GET", "/users/1"))
    ctx.target = compiled_target(slug="api", kind="http")
    asyncio.run(select_protections(ctx))
    ctx.response_body = orjson.dumps({"id": 1, "owner": {"id": 2, "mail": "a@b.example"}})
    asyncio.run(protect_response(ctx))
    assert orjson.loads(ctx.response_body) == {"owner": {"mail": "[REDACTED:EMAIL]"}}
