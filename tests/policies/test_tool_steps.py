"""The tool steps on a hand-built context: batches, hostile listings, and a record that cannot be written."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from gateway.proxy.context import ProxyContext
from gateway.proxy.errors import InvalidArguments, ToolNotApproved
from gateway.proxy.jsonrpc import Route
from policies import services
from policies.compiler import CompiledTarget, CompiledTool
from policies.steps import check_tool_calls, pin_listed_tools, validate_arguments
from policies.tools import ToolDefinition, compile_input_schema
from tests.factories import compiled_target, proxy_context

SCHEMA = {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}
SEARCH = ToolDefinition.from_listing({"name": "search", "description": "Search.", "inputSchema": SCHEMA})
APPROVED = CompiledTool("search", "approved", SEARCH.hash, SEARCH.hash, compile_input_schema(SCHEMA))
CHANGED = CompiledTool("search", "changed", SEARCH.hash, "f" * 64, compile_input_schema(SCHEMA))
LISTING = Route("POST", "/tools/list", plumbing=True, jsonrpc_method="tools/list", id=1, has_id=True)


def target(*tools: CompiledTool, hold: bool = False, validate: bool = True) -> CompiledTarget:
    return compiled_target(
        tools={t.name: t for t in tools},
        hold_new_tools=hold,
        validate_arguments=validate,
    )


def tool_call(name: str, arguments: Any, msg_id: int) -> tuple[Route, dict[str, Any]]:
    route = Route("POST", f"/tools/{name}", jsonrpc_method="tools/call", name=name, id=msg_id, has_id=True)
    message = {
        "jsonrpc": "2.0",
        "id": msg_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }
    return route, message


def context(
    compiled: CompiledTarget, *calls: tuple[Route, dict[str, Any]], batch: bool = False
) -> ProxyContext:
    return proxy_context(
        target=compiled,
        routes=[route for route, _ in calls],
        messages=[message for _, message in calls],
        is_batch=batch,
    )


def test_a_batch_holding_invalid_arguments_is_refused_whole_each_item_answered():
    ctx = context(
        target(APPROVED),
        tool_call("search", {"query": "ok"}, 1),
        tool_call("search", {"query": 7}, 2),
        batch=True,
    )
    with pytest.raises(InvalidArguments) as caught:
        asyncio.run(validate_arguments(ctx))
    first, second = orjson.loads(caught.value.body())
    assert first["error"] == {"code": -32602, "message": "Not run: the batch holds a refused call"}
    assert second["id"] == 2 and second["error"]["data"]["errors"] == [
        {"path": "/query", "message": "7 is not of type 'string'"}
    ]


def test_arguments_are_not_validated_when_the_target_switch_is_off():
    ctx = context(target(APPROVED, validate=False), tool_call("search", {"query": 7}, 1))
    asyncio.run(validate_arguments(ctx))  # no error: forwarded as sent


def test_a_call_of_a_changed_tool_names_both_definitions():
    ctx = context(target(CHANGED), tool_call("search", {"query": "x"}, 1))
    with pytest.raises(ToolNotApproved) as caught:
        asyncio.run(check_tool_calls(ctx))
    assert f"approved {SEARCH.hash[:12]}, now served ffffffffffff" in caught.value.message


def test_a_tool_never_listed_is_forwarded_unless_the_target_holds_new_tools():
    asyncio.run(check_tool_calls(context(target(), tool_call("other", {}, 1))))
    with pytest.raises(ToolNotApproved):
        asyncio.run(check_tool_calls(context(target(hold=True), tool_call("other", {}, 1))))


def listing_context(compiled: CompiledTarget, tools: list[Any]) -> ProxyContext:
    ctx = context(compiled)
    ctx.routes, ctx.listings = [LISTING], {1: "tools/list"}
    ctx.response_body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "result": {"tools": tools}})
    return ctx


def listed_names(ctx: ProxyContext) -> list[str]:
    assert ctx.response_body is not None
    return [t["name"] for t in orjson.loads(ctx.response_body)["result"]["tools"]]


def test_a_name_listed_twice_with_different_definitions_and_unpinnable_items_are_hidden(monkeypatch):
    recorded: list[list[str]] = []

    def record(*, target_id, definitions, witness):
        recorded.append([d.name for d in definitions])
        return {d.name: "approved" for d in definitions}

    monkeypatch.setattr(services, "tool_definitions_record", record)
    tools = [
        SEARCH.as_json(),
        {"name": "twice", "description": "one"},
        {"name": "twice", "description": "two"},
        {"name": 42},
        {"name": "fine", "description": "Fine."},
    ]
    ctx = listing_context(target(APPROVED), tools)

    asyncio.run(pin_listed_tools(ctx))

    assert listed_names(ctx) == ["search", "fine"]
    assert recorded == [["fine"]]  # the approved search is known: nothing to record
    assert ctx.hidden_tools["twice"] == "listed twice with different definitions"


def test_when_the_record_cannot_be_written_new_tools_are_hidden_and_approved_ones_stay(monkeypatch):
    def record(**kwargs):
        raise RuntimeError("database away")

    monkeypatch.setattr(services, "tool_definitions_record", record)
    ctx = listing_context(target(APPROVED), [SEARCH.as_json(), {"name": "new", "description": "New."}])

    asyncio.run(pin_listed_tools(ctx))

    assert listed_names(ctx) == ["search"]
    assert ctx.hidden_tools == {"new": "not recorded"}


def test_a_listing_in_an_event_stream_is_pinned_event_by_event(monkeypatch):
    monkeypatch.setattr(services, "tool_definitions_record", lambda **kwargs: {"new": "pending"})
    ctx = listing_context(target(APPROVED), [])
    payload = orjson.dumps(
        {"jsonrpc": "2.0", "id": 1, "result": {"tools": [SEARCH.as_json(), {"name": "new"}]}}
    )
    ctx.response_body = None
    ctx.response_headers = {"content-type": "text/event-stream"}

    async def upstream() -> AsyncIterator[bytes]:
        yield b"event: message\ndata: " + payload[:20]
        yield payload[20:] + b"\n\n"

    async def read() -> bytes:
        ctx.response_stream = upstream()
        await pin_listed_tools(ctx)
        assert ctx.response_stream is not None
        return b"".join([chunk async for chunk in ctx.response_stream])

    body = asyncio.run(read())
    data = orjson.loads(body.split(b"data: ", 1)[1])
    assert [t["name"] for t in data["result"]["tools"]] == ["search"]
    assert body.startswith(b"event: message\n") and body.endswith(b"\n\n")
