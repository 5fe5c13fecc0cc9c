"""Tool steps: pinned definitions decide which tools an agent sees and may call, and the approved input
schema decides which arguments reach the upstream.

Only MCP targets have tools. A tool the gateway has never seen listed is forwarded on a target that
approves new tools (there is no definition to hold or validate yet) and refused on one that holds them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson

from gateway.background import run_in_background_thread
from gateway.proxy.context import ProxyContext
from gateway.proxy.errors import (
    INVALID_PARAMS,
    CallRefused,
    InvalidArguments,
    ToolNotApproved,
    batch_refusal_body,
)
from gateway.proxy.sse import event_data, replace_event_data, transform_events_async
from policies.compiler import CompiledTarget, CompiledTool
from policies.tools import ArgumentError, ToolDefinition, ToolDefinitionError

logger = logging.getLogger(__name__)

#: How long a ``tools/list`` reply may wait for its new or changed definitions to be recorded.
RECORD_TIMEOUT_SECONDS = 10.0
NOT_RUN = "Not run: the batch holds a refused call"

Refusal = tuple[str, dict[str, Any]]  # message, data


async def check_tool_calls(ctx: ProxyContext) -> None:
    """Reads ``target`` and ``routes``; raises ToolNotApproved.

    A ``tools/call`` of a tool whose definition is held (new and not approved, or changed since it was
    approved) is refused, naming the change; so is a tool never seen listed, on a target that holds
    new tools. A batch holding one is refused whole.
    """
    target = ctx.require_target()
    if not target.is_mcp:
        return
    refusals = {
        index: refusal
        for index, route in enumerate(ctx.routes)
        if route.jsonrpc_method == "tools/call" and (refusal := _held(target, route.name)) is not None
    }
    if refusals:
        _refuse(ctx, refusals, ToolNotApproved, code=ToolNotApproved.code)


def _held(target: CompiledTarget, name: str) -> Refusal | None:
    pin = target.tools.get(name)
    if pin is None:
        if not target.hold_new_tools:
            return None
        message = f"Tool {name!r} is held: its definition has not been listed and approved yet"
        return message, {"tool": name, "state": "unseen"}
    if pin.callable:
        return None
    data = {
        "tool": name,
        "state": pin.state,
        "approved_hash": pin.approved_hash,
        "served_hash": pin.served_hash,
    }
    if pin.state == "changed":
        message = (
            f"Tool {name!r} changed since it was approved (approved {pin.approved_hash[:12]}, now served "
            f"{pin.served_hash[:12]}): refused until an admin approves the new definition"
        )
    else:
        message = (
            f"Tool {name!r} is new and held until an admin approves its definition ({pin.served_hash[:12]})"
        )
    return message, data


async def validate_arguments(ctx: ProxyContext) -> None:
    """Reads ``target``, ``routes`` and ``messages``; raises InvalidArguments (-32602).

    Each ``tools/call`` of a pinned tool has its ``arguments`` checked against the approved definition's
    input schema, unless the target's switch is off; the error names each failing path (a JSON
    Pointer into the arguments). A batch holding invalid arguments is refused whole.
    """
    target = ctx.require_target()
    if not target.is_mcp or not target.validate_arguments or not target.tools or not ctx.messages:
        return
    refusals: dict[int, Refusal] = {}
    for index, (route, message) in enumerate(zip(ctx.routes, ctx.messages, strict=True)):
        pin = target.tools.get(route.name) if route.jsonrpc_method == "tools/call" else None
        if pin is None or pin.validator is None:
            continue
        errors = pin.validator.errors(message["params"].get("arguments"))
        if errors:
            refusals[index] = _invalid(route.name, errors)
    if refusals:
        _refuse(ctx, refusals, InvalidArguments, code=INVALID_PARAMS)


def _invalid(name: str, errors: list[ArgumentError]) -> Refusal:
    listed = "; ".join(f"{error.path or '/'}: {error.message}" for error in errors)
    return f"Invalid arguments for tool {name!r}: {listed}", {
        "tool": name,
        "errors": [error.as_dict() for error in errors],
    }


def _refuse(ctx: ProxyContext, refusals: dict[int, Refusal], error: type[CallRefused], *, code: int) -> None:
    first_message, first_data = refusals[min(refusals)]
    batch_body = None
    if ctx.is_batch:
        ids = [route.id for route in ctx.routes]
        batch_body = batch_refusal_body(ids, refusals, code=code, not_run=NOT_RUN)
    raise error(first_message, data=first_data, batch_body=batch_body)


async def pin_listed_tools(ctx: ProxyContext) -> None:
    """Reads ``target``, ``listings`` and the response; writes the body (or wraps the stream) and
    ``hidden_tools``. Raises nothing.

    Each tool of a ``tools/list`` result is compared with its pinned definition. New and changed
    definitions are recorded (policies.services.tool_definitions_record, which approves or holds them)
    before the reply goes on, so the listing and every later call agree; a tool that is not approved
    as served is removed from the listing. If the record cannot be written in time, the new and
    changed tools are removed too (fail closed) and shown again on a later listing. On the session's
    GET stream every result holding a ``tools`` list is treated so, whatever its id.
    """
    target = ctx.require_target()
    ids: set[Any] | None = {msg_id for msg_id, method in ctx.listings.items() if method == "tools/list"}
    if ctx.is_session_stream:
        ids = None  # any result holding a tools list (see filter_listings)
    if not target.is_mcp or ids == set() or ctx.status >= 400:
        return
    pin = ListingPinner(ctx, target, ids)
    if ctx.response_body is not None:
        ctx.response_body = await pin.body(ctx.response_body)
    elif ctx.response_stream is not None and ctx.response_headers.get("content-type", "").startswith(
        "text/event-stream"
    ):
        ctx.response_stream = transform_events_async(
            ctx.response_stream, pin.event, ctx.runtime.conf.max_event_bytes
        )


class ListingPinner:
    """Pins and trims the ``tools/list`` results of one reply (a JSON body, or event by event)."""

    def __init__(self, ctx: ProxyContext, target: CompiledTarget, ids: set[Any] | None) -> None:
        self.ctx, self.target, self.ids = ctx, target, ids

    async def event(self, event: bytes) -> bytes:
        data = event_data(event)
        if data is None:
            return event
        pinned = await self.body(data)
        return event if pinned is data else replace_event_data(event, pinned)

    async def body(self, body: bytes) -> bytes:
        """The body with every tool that is not approved as served removed; the same object if none is."""
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body
        changed = False
        for message in payload if isinstance(payload, list) else (payload,):
            tools = self._listed_tools(message)
            if tools is not None:
                kept = await self._approved(tools)
                if len(kept) != len(tools):
                    message["result"]["tools"] = kept
                    changed = True
        return orjson.dumps(payload) if changed else body

    def _listed_tools(self, message: Any) -> list[Any] | None:
        if not isinstance(message, dict) or "method" in message:
            return None
        msg_id, result = message.get("id"), message.get("result")
        if not isinstance(result, dict):
            return None
        if self.ids is not None and (not isinstance(msg_id, str | int) or msg_id not in self.ids):
            return None
        tools = result.get("tools")
        return tools if isinstance(tools, list) else None

    async def _approved(self, items: list[Any]) -> list[Any]:
        parsed = _parsed(items, self._hide)
        unique = {d.name: d for d in parsed if d is not None}
        unknown = [d for d in unique.values() if not _known(self.target.tools.get(d.name), d)]
        recorded = await self._record(unknown) if unknown else {}
        kept = []
        for item, definition in zip(items, parsed, strict=True):
            if definition is None:
                continue
            state = self._state(definition, recorded)
            if state == "approved":
                kept.append(item)
            else:
                self._hide(definition.name, state)
        return kept

    def _state(self, definition: ToolDefinition, recorded: dict[str, str]) -> str:
        """``approved``, ``pending`` or ``changed`` as pinned, or ``not recorded`` (the write failed)."""
        if definition.name in recorded:
            return recorded[definition.name]
        pin = self.target.tools.get(definition.name)
        if not _known(pin, definition) or pin is None:
            return "not recorded"
        return "approved" if pin.callable else pin.state

    def _hide(self, name: str, why: str) -> None:
        self.ctx.hidden_tools[name[:200]] = why

    async def _record(self, definitions: list[ToolDefinition]) -> dict[str, str]:
        from policies.services import ListingWitness, tool_definitions_record

        credential = self.ctx.credential
        witness = ListingWitness(
            request_id=self.ctx.request_id,
            credential_id=credential.id if credential else None,
            credential_name=credential.name if credential else "",
            credential_prefix=credential.prefix if credential else "",
        )
        record = run_in_background_thread(
            tool_definitions_record, target_id=self.target.id, definitions=definitions, witness=witness
        )
        try:
            states: dict[str, str] = await asyncio.wait_for(record, RECORD_TIMEOUT_SECONDS)
        except Exception as exc:  # database away or slow: hide what could not be pinned
            logger.warning("tool definitions of %s not recorded: %s", self.target.slug, type(exc).__name__)
            return {}
        return states


def _known(pin: CompiledTool | None, definition: ToolDefinition) -> bool:
    """Whether ``definition`` is what the pin last recorded (no need to record it again)."""
    return pin is not None and pin.served_hash == definition.hash


def _parsed(items: list[Any], hide: Callable[[str, str], None]) -> list[ToolDefinition | None]:
    """Each listed item's definition, or None for one that cannot be pinned and for every item of a name
    listed twice with different definitions (which one would the model read?)."""
    parsed: list[ToolDefinition | None] = []
    by_name: dict[str, ToolDefinition] = {}
    ambiguous: set[str] = set()
    for item in items:
        try:
            definition = ToolDefinition.from_listing(item)
        except ToolDefinitionError as error:
            hide(str(item.get("name", "?")) if isinstance(item, dict) else "?", f"unpinnable: {error}")
            parsed.append(None)
            continue
        if by_name.setdefault(definition.name, definition) != definition:
            ambiguous.add(definition.name)
        parsed.append(definition)
    for name in ambiguous:
        hide(name, "listed twice with different definitions")
    return [None if d is not None and d.name in ambiguous else d for d in parsed]
