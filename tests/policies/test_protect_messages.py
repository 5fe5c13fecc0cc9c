"""protect_body on hand-built JSON-RPC messages: errors and server-initiated messages are redacted with
the JSON-RPC frame left intact, and the session's GET stream gets every protection of the credential."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from gateway.proxy.jsonrpc import Route
from policies.compiler import (
    CompiledCredential,
    ScopedFilter,
    ScopedRedactor,
    compile_route_scope,
)
from policies.content import compile_filter
from policies.protect import CallProtections, ProtectionTally, RequestProtections, protect_body
from policies.redaction import Redactor, resolve_detectors
from policies.steps import select_protections
from tests.factories import compiled_credential, compiled_target
from tests.policies.test_protection_steps import context

CARD = "4111 1111 1111 1111"


def redactor(policy_id: int = 6, action: str = "mask", mode: str = "enforce") -> ScopedRedactor:
    detectors = resolve_detectors(["email", "card"])
    return ScopedRedactor(policy_id, None, compile_route_scope(""), Redactor(detectors, action, mode))  # type: ignore[arg-type]


def call(*redactors: ScopedRedactor, method: str = "tools/call") -> CallProtections:
    return CallProtections(method, (), redactors)


def protections_for_id_1(
    protected: CallProtections, fallback: CallProtections | None = None
) -> RequestProtections:
    return RequestProtections({1: protected}, fallback or protected)


def protect(message: Any, protections: RequestProtections) -> tuple[Any, ProtectionTally]:
    tally = ProtectionTally()
    return orjson.loads(protect_body(orjson.dumps(message), protections, tally)), tally


def kinds(tally: ProtectionTally) -> dict[str, int]:
    [redaction] = tally.as_audit()["redactions"]
    return redaction["kinds"]


def error(message: str, data: Any = None, msg_id: Any = 1) -> dict[str, Any]:
    body: dict[str, Any] = {"code": -32000, "message": message}
    if data is not None:
        body["data"] = data
    return {"jsonrpc": "2.0", "id": msg_id, "error": body}


def test_an_error_message_and_data_are_masked_and_the_frame_is_left_intact():
    protected, tally = protect(
        error("no account for a@b.example", {"card": CARD, "retry": 3}),
        protections_for_id_1(call(redactor())),
    )

    assert protected == {
        "jsonrpc": "2.0",
        "id": 1,
        "error": {
            "code": -32000,
            "message": "no account for [REDACTED:EMAIL]",
            "data": {"card": "[REDACTED:CARD]", "retry": 3},
        },
    }
    assert kinds(tally) == {"EMAIL": 1, "CARD": 1}


def test_an_error_answering_a_call_nothing_applies_to_is_left_alone():
    nothing = CallProtections("tools/call", (), ())
    body = orjson.dumps(error("no account for a@b.example"))
    tally = ProtectionTally()

    assert protect_body(body, RequestProtections({1: nothing}, call(redactor())), tally) is body
    assert tally.as_audit()["redactions"] == []


def test_an_error_of_an_unknown_id_gets_the_fallback_redactors():
    nothing = CallProtections("tools/call", (), ())
    protected, _ = protect(
        error("a@b.example", msg_id=None), RequestProtections({1: nothing}, call(redactor()))
    )

    assert protected["error"]["message"] == "[REDACTED:EMAIL]" and protected["id"] is None


def test_drop_replaces_a_required_error_message_with_the_mask_and_removes_optional_data():
    protected, tally = protect(
        error("card " + CARD + " of a@b.example", "a@b.example"),
        protections_for_id_1(call(redactor(action="drop"))),
    )

    assert protected["error"] == {"code": -32000, "message": "[REDACTED:CARD][REDACTED:EMAIL]"}
    assert kinds(tally) == {"CARD": 1, "EMAIL": 2}


def test_monitor_mode_leaves_an_error_byte_for_byte_and_counts_it():
    body = orjson.dumps(error("no account for a@b.example", {"card": CARD}))
    tally = ProtectionTally()

    assert protect_body(body, protections_for_id_1(call(redactor(mode="monitor"))), tally) is body
    assert tally.as_audit()["redactions"] == [
        {"policy": 6, "mode": "monitor", "action": "mask", "kinds": {"EMAIL": 1, "CARD": 1}}
    ]


def test_a_log_notification_has_its_params_masked_and_keeps_its_method():
    log = {
        "jsonrpc": "2.0",
        "method": "notifications/message",
        "params": {"level": "info", "logger": "billing", "data": {"text": "charging a@b.example"}},
    }
    protected, tally = protect(log, protections_for_id_1(call(redactor())))

    assert protected == {
        "jsonrpc": "2.0",
        "method": "notifications/message",
        "params": {"level": "info", "logger": "billing", "data": {"text": "charging [REDACTED:EMAIL]"}},
    }
    assert kinds(tally) == {"EMAIL": 1}


def test_a_server_request_sharing_an_agent_call_id_still_gets_the_fallback_redactors():
    # The server's ids are its own: id 1 here is not the agent's call 1, which nothing protects.
    sampling = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "sampling/createMessage",
        "params": {"messages": [{"role": "user", "content": {"type": "text", "text": "pay with " + CARD}}]},
    }
    nothing = CallProtections("tools/call", (), ())
    protected, _ = protect(sampling, RequestProtections({1: nothing}, call(redactor())))

    assert protected["params"]["messages"][0]["content"]["text"] == "pay with [REDACTED:CARD]"
    assert protected["id"] == 1 and protected["method"] == "sampling/createMessage"


def test_a_result_of_unknown_call_is_filtered_in_the_shape_it_shows():
    owner = compile_filter(filter_id=5, paths=["$.owner"])
    structured = {"owner": {"email": "a@b.example"}, "name": "x"}
    result = {
        "structuredContent": structured,
        "content": [{"type": "text", "text": orjson.dumps(structured).decode()}],
    }
    protections = RequestProtections({}, CallProtections("", (owner,), ()))

    protected, _ = protect({"jsonrpc": "2.0", "id": 4, "result": result}, protections)

    assert protected["result"]["structuredContent"] == {"name": "x"}
    assert orjson.loads(protected["result"]["content"][0]["text"]) == {"name": "x"}


def scoped_credential() -> CompiledCredential:
    search_only = compile_route_scope("POST /tools/search")
    return compiled_credential(
        target_ids=frozenset({1, 2}),
        filters=(ScopedFilter(1, search_only, compile_filter(filter_id=5, paths=["$..id"])),),
        redactors=(
            ScopedRedactor(6, 1, search_only, Redactor(resolve_detectors("email"))),
            ScopedRedactor(7, 2, compile_route_scope(""), Redactor(resolve_detectors("card"))),
        ),
    )


def test_the_get_stream_gets_every_protection_for_its_target_route_scoped_ones_too():
    ctx = context(scoped_credential(), Route("GET", "/", plumbing=True))
    ctx.method = "GET"

    asyncio.run(select_protections(ctx))

    assert ctx.inspect_response is True and ctx.protections is not None
    assert [f.id for f in ctx.protections.fallback.filters] == [5]
    assert [r.id for r in ctx.protections.fallback.redactors] == [6]  # 7 is another target's


def test_a_get_stream_nothing_applies_to_is_not_parsed():
    ctx = context(scoped_credential(), Route("GET", "/", plumbing=True))
    ctx.method = "GET"
    ctx.target = compiled_target(id=3, slug="other")

    asyncio.run(select_protections(ctx))

    assert ctx.protections is None and ctx.inspect_response is False
