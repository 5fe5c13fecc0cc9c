"""JSON-RPC parsing and the virtual routes that let one rule set scope REST and MCP alike.

``tools/call`` of ``search`` is ``POST /tools/search``; ``resources/read`` of ``uri`` is
``POST /resources/<uri>``; ``prompts/get`` of ``p`` is ``POST /prompts/p``. Protocol plumbing is
marked so the scope step lets any bound credential through; any other method ``m`` is
``POST /m``, denied unless a rule allows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from gateway.proxy.errors import InvalidParams, InvalidRequest, ParseError

PLUMBING_METHODS = frozenset(
    {
        "initialize",
        "ping",
        "server/discover",
        "logging/setLevel",
        "subscriptions/listen",
        "tools/list",
        "resources/list",
        "resources/templates/list",
        "prompts/list",
    }
)

# The list methods whose results are trimmed to what the credential may call, with the result
# key that holds the items, the item field that names them and the virtual route prefix.
LISTINGS: dict[str, tuple[str, str, str]] = {
    "tools/list": ("tools", "name", "/tools/"),
    "resources/list": ("resources", "uri", "/resources/"),
    "prompts/list": ("prompts", "name", "/prompts/"),
}

_NAMED_CALLS = {
    "tools/call": ("name", "/tools/"),
    "prompts/get": ("name", "/prompts/"),
    "resources/read": ("uri", "/resources/"),
}


@dataclass(frozen=True, slots=True)
class Route:
    """One scoped unit of a request: an HTTP request or one JSON-RPC message in it."""

    method: str
    path: str
    plumbing: bool = False
    jsonrpc_method: str = ""
    name: str = ""
    id: Any = None
    has_id: bool = False

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def parse_body(body: bytes) -> tuple[list[dict[str, Any]], bool]:
    """Parse a JSON-RPC body into its messages and whether it was a batch."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"Parse error: body is not valid JSON ({exc.msg} at position {exc.pos})") from None
    if isinstance(payload, list):
        if not payload:
            raise InvalidRequest("Invalid Request: empty batch")
        return [_check_message(item) for item in payload], True
    return [_check_message(payload)], False


def _check_message(message: Any) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise InvalidRequest("Invalid Request: a JSON-RPC message must be an object")
    if message.get("jsonrpc") != "2.0":
        raise InvalidRequest('Invalid Request: "jsonrpc" must be "2.0"')
    if "method" in message and not isinstance(message["method"], str):
        raise InvalidRequest('Invalid Request: "method" must be a string')
    if "method" not in message and "result" not in message and "error" not in message:
        raise InvalidRequest("Invalid Request: neither a request, a notification nor a response")
    if "id" in message and not (message["id"] is None or isinstance(message["id"], (str, int))):
        raise InvalidRequest('Invalid Request: "id" must be a string or a number')
    return message


def route_for(message: dict[str, Any]) -> Route:
    """The virtual route of one JSON-RPC message."""
    has_id = "id" in message
    msg_id = message.get("id")
    method = message.get("method")
    if method is None:  # a response to a request the server sent (sampling, elicitation ...)
        return Route("POST", "/", plumbing=True, id=msg_id, has_id=has_id)
    if method in PLUMBING_METHODS or method.startswith("notifications/"):
        return Route("POST", f"/{method}", plumbing=True, jsonrpc_method=method, id=msg_id, has_id=has_id)
    if method in _NAMED_CALLS:
        field, prefix = _NAMED_CALLS[method]
        params = message.get("params")
        name = params.get(field) if isinstance(params, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidParams(f'Invalid params: {method} needs a string "params.{field}"')
        return Route("POST", prefix + name, jsonrpc_method=method, name=name, id=msg_id, has_id=has_id)
    return Route("POST", f"/{method}", jsonrpc_method=method, id=msg_id, has_id=has_id)
