"""JSON-RPC parsing and the virtual routes that let one rule set scope REST and MCP alike.

``tools/call`` of ``search`` is ``POST /tools/search``; ``resources/read`` of ``uri`` is
``POST /resources/<uri>``; ``prompts/get`` of ``p`` is ``POST /prompts/p``. Protocol plumbing is
marked so the scope step lets any bound credential through; any other method ``m`` is
``POST /m``, denied unless a rule allows it.

The gateway decides on its own parse and forwards a re-serialisation of it, so a message that
other JSON parsers could read differently is refused: a duplicate key in any object (some parsers
keep the first, some the last), two keys of one object equal under Unicode case folding (Go's
``encoding/json`` matches keys case-insensitively), a key that folds to a JSON-RPC member or a
named call's parameter without being it, and an integer that does not fit 64 bits.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

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

_MEMBERS = frozenset({"jsonrpc", "method", "params", "id", "result", "error"})
_NAMED_CALL_PARAMS = frozenset({"name", "arguments", "uri", "_meta"})
# The integers orjson writes back exactly; it reads larger ones as floats.
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
_TOO_DEEP = "Invalid Request: the JSON is nested too deeply (at most 254 levels)"


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


@dataclass(frozen=True, slots=True)
class ParsedBody:
    """A JSON-RPC body as the gateway read it, and those messages serialised again for the upstream."""

    messages: list[dict[str, Any]]
    is_batch: bool
    canonical: bytes


def parse_body(body: bytes) -> ParsedBody:
    """Parse a JSON-RPC body into its messages, whether it was a batch, and its canonical bytes.

    orjson is the strict RFC 8259 parser (no NaN, no invalid UTF-8, no lone surrogate); a second
    pass with the standard library's C scanner sees every object's keys in order, which orjson
    does not show, to refuse what another parser could read differently. The canonical bytes are
    ``orjson.dumps`` of what was parsed (a batch stays a batch): what the upstream receives.
    Raises ParseError (-32700) and InvalidRequest (-32600).
    """
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"Parse error: body is not valid JSON ({exc.msg} at position {exc.pos})") from None
    try:
        canonical = orjson.dumps(payload)
    except orjson.JSONEncodeError:  # orjson writes at most 254 levels of nesting
        raise InvalidRequest(_TOO_DEEP) from None
    _check_keys_and_numbers(body)
    if isinstance(payload, list):
        if not payload:
            raise InvalidRequest("Invalid Request: empty batch")
        return ParsedBody([_check_message(item) for item in payload], True, canonical)
    return ParsedBody([_check_message(payload)], False, canonical)


def fold(key: str) -> str:
    """A key's Unicode case folding (casefold of NFKC): keys equal under it collide in some parsers."""
    if key.isascii():
        return key.lower()
    return unicodedata.normalize("NFKC", key).casefold()


def _check_keys_and_numbers(body: bytes) -> None:
    try:
        _KEY_CHECKER.decode(body.decode("utf-8"))
    except RecursionError:
        raise InvalidRequest(_TOO_DEEP) from None
    except ValueError:  # never seen (orjson is the stricter parser), but never a 500 either
        raise ParseError("Parse error: body is not valid JSON") from None


def _check_object_keys(pairs: list[tuple[str, Any]]) -> None:
    """Called by the scanner for every object, with its members in order."""
    if len(pairs) > 1:
        keys = [key for key, _ in pairs]
        folded = {key.lower() for key in keys} if "".join(keys).isascii() else {fold(key) for key in keys}
        if len(folded) != len(keys):
            _refuse_colliding_keys(keys)


def _refuse_colliding_keys(keys: list[str]) -> None:
    seen: dict[str, str] = {}
    for key in keys:
        folded = fold(key)
        other = seen.get(folded)
        if other is None:
            seen[folded] = key
        elif other == key:
            raise InvalidRequest(f"Invalid Request: duplicate key {_quoted(key)}")
        else:
            raise InvalidRequest(
                f"Invalid Request: keys {_quoted(other)} and {_quoted(key)} differ only by case or "
                "Unicode folding"
            )


def _check_int(literal: str) -> int:
    value = int(literal)
    if not _INT_MIN <= value <= _INT_MAX:
        raise InvalidRequest("Invalid Request: an integer does not fit in 64 bits")
    return value


# Built once: json.loads with hooks would build a new decoder and scanner on every call.
_KEY_CHECKER = json.JSONDecoder(object_pairs_hook=_check_object_keys, parse_int=_check_int)


def _quoted(key: str) -> str:
    """A key for an error message: JSON-escaped (no control character) and short."""
    quoted = json.dumps(key)
    return quoted if len(quoted) <= 66 else quoted[:64] + '..."'


def _check_folded_keys(obj: dict[str, Any], members: frozenset[str], where: str) -> None:
    """Members are lower-case ASCII, so a member's folding is itself."""
    for key in obj:
        if key not in members and fold(key) in members:
            raise InvalidRequest(
                f"Invalid Request: {where} key {_quoted(key)} differs from {_quoted(fold(key))} "
                "only by case or Unicode folding"
            )


def _check_message(message: Any) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise InvalidRequest("Invalid Request: a JSON-RPC message must be an object")
    _check_folded_keys(message, _MEMBERS, "top-level")
    if message.get("jsonrpc") != "2.0":
        raise InvalidRequest('Invalid Request: "jsonrpc" must be "2.0"')
    if "method" in message and not isinstance(message["method"], str):
        raise InvalidRequest('Invalid Request: "method" must be a string')
    if "method" not in message and "result" not in message and "error" not in message:
        raise InvalidRequest("Invalid Request: neither a request, a notification nor a response")
    if "id" in message and not (message["id"] is None or isinstance(message["id"], (str, int))):
        raise InvalidRequest('Invalid Request: "id" must be a string or a number')
    params = message.get("params")
    if message.get("method") in _NAMED_CALLS and isinstance(params, dict):
        _check_folded_keys(params, _NAMED_CALL_PARAMS, "params")
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
        if method == "resources/read":
            check_resource_uri(name)
        return Route("POST", prefix + name, jsonrpc_method=method, name=name, id=msg_id, has_id=has_id)
    return Route("POST", f"/{method}", jsonrpc_method=method, id=msg_id, has_id=has_id)


def check_resource_uri(uri: str) -> None:
    """Refuse a resource URI the upstream could resolve to another resource than the rules matched.

    Rules match the URI as written (``/resources/docs://public/**``), and an MCP server may resolve
    it like a path, so a URI with a dot segment (``docs://public/../secret``), an encoded slash or
    backslash, a backslash or a control character is refused with -32602 rather than guessed at:
    in the URI as written, and in its path as an upstream decoding it once, twice or three times
    would read it (``%252f``, ``%252e%252e``, ``%2500``). Raises InvalidParams.
    """
    if _ambiguous(uri):
        raise InvalidParams(_AMBIGUOUS_URI)
    path = uri.split("://", 1)[-1].split("?", 1)[0].split("#", 1)[0]
    for decodings in range(4):
        if decodings:
            path = unquote(path)
        if _ambiguous(path) or any(segment in (".", "..") for segment in path.split("/")):
            raise InvalidParams(_AMBIGUOUS_URI)


def _ambiguous(text: str) -> bool:
    lowered = text.lower()
    return (
        "\\" in text
        or "%2f" in lowered
        or "%5c" in lowered
        or any(ord(c) < 0x20 or c == "\x7f" for c in text)
    )


_AMBIGUOUS_URI = (
    "Invalid params: a resource URI with a dot segment, an encoded slash or backslash, a backslash or "
    "a control character is refused (the upstream could read another resource than the rules allow)"
)
