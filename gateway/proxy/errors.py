"""Gateway errors and the one place that turns them into HTTP responses.

A step stops a request by raising a :class:`GatewayError`. Every error becomes a JSON-RPC error
body (with the request's ``id`` when there was exactly one) and the status named here; its ``kind``
is the reason class the metrics count it under.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

# JSON-RPC 2.0 codes, and the implementation-defined server-error range for the gateway's own.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
UNAUTHENTICATED = -32001
FORBIDDEN = -32003
NOT_FOUND = -32004
PAYLOAD_TOO_LARGE = -32013
UPSTREAM_UNAVAILABLE = -32010
UPSTREAM_TIMEOUT = -32011
UPSTREAM_TOO_LARGE = -32012
RATE_LIMITED = -32029
METER_UNAVAILABLE = -32053
RESPONSE_UNPROTECTABLE = -32014


class GatewayError(Exception):
    """A local reply: the request stops here with ``status`` and a JSON-RPC error."""

    status = 500
    code = -32603
    decision = "error"
    # The metrics' reason class (gateway/metrics): one bounded label value per error class, never the
    # message, which may quote what the agent sent.
    kind = "internal"

    def __init__(
        self,
        message: str,
        *,
        data: Any = None,
        headers: dict[str, str] | None = None,
        audit_reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.data = data
        self.headers = headers or {}
        # What the audit event records; the agent sees only ``message`` (they differ when the
        # precise reason is not the caller's to know, e.g. why a credential was refused).
        self.audit_reason = message if audit_reason is None else audit_reason

    def error_object(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error

    def body(self, request_id: Any = None) -> bytes:
        return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "error": self.error_object()})


class CorsPreflight(GatewayError):
    """Not an error: the local reply to a browser's CORS preflight from an allowed origin."""

    status, code, decision = 204, 0, "allowed"
    kind = "cors_preflight"

    def body(self, request_id: Any = None) -> bytes:
        return b""


class TargetNotFound(GatewayError):
    status, code, decision = 404, NOT_FOUND, "error"
    kind = "unknown_target"


class AuthenticationFailed(GatewayError):
    """Every refused credential gets the same public message; ``reason`` goes to the audit only.

    The caller may not learn whether a token is unknown, revoked, expired or malformed.
    """

    status, code, decision = 401, UNAUTHENTICATED, "denied"
    kind = "auth"
    PUBLIC_MESSAGE = "Invalid or missing credential"

    def __init__(self, reason: str, **kwargs: Any) -> None:
        super().__init__(self.PUBLIC_MESSAGE, audit_reason=reason, **kwargs)
        self.headers.setdefault("WWW-Authenticate", 'Bearer realm="mcp-gateway"')


class Forbidden(GatewayError):
    status, code, decision = 403, FORBIDDEN, "denied"
    kind = "forbidden"


class SessionNotFound(GatewayError):
    status, code, decision = 404, NOT_FOUND, "denied"
    kind = "session"


class CallRefused(GatewayError):
    """A policy refused one or more calls of the request. For a batch, ``batch_body`` holds one error
    per item (no item runs: no partial execution); otherwise the body is the one error."""

    status, code, decision = 400, FORBIDDEN, "denied"
    kind = "refused"

    def __init__(self, message: str, *, batch_body: bytes | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.batch_body = batch_body

    def body(self, request_id: Any = None) -> bytes:
        return self.batch_body if self.batch_body is not None else super().body(request_id)


def batch_refusal_body(
    ids: Sequence[Any], refusals: Mapping[int, tuple[str, Any]], *, code: int, not_run: str
) -> bytes:
    """The reply to a batch a policy refused: for each item (by position, with its ``id``) its own
    error ``(message, data)`` from ``refusals``, or ``not_run`` for an item refused only because the
    batch is refused whole."""
    items = []
    for index, item_id in enumerate(ids):
        refusal = refusals.get(index)
        error: dict[str, Any] = {"code": code, "message": not_run}
        if refusal is not None:
            error = {"code": code, "message": refusal[0], "data": refusal[1]}
        items.append({"jsonrpc": "2.0", "id": item_id, "error": error})
    return orjson.dumps(items)


class ScopeDenied(CallRefused):
    """A call no allow-rule permits. MCP (JSON-RPC) calls get 400; plain HTTP routes get 403."""

    kind = "scope"

    def __init__(self, message: str, *, status: int = 400, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.status = status


class ToolNotApproved(CallRefused):
    """A ``tools/call`` of a tool whose definition is held: new and not yet approved, or changed since
    it was approved (a "rug pull"). It runs again once an admin approves the definition served."""

    kind = "tool_held"


class InvalidArguments(CallRefused):
    """``tools/call`` arguments that fail the approved tool's input schema; they never reach the
    upstream. ``data`` names each failing path."""

    code = INVALID_PARAMS
    kind = "invalid_arguments"


class BodyTooLarge(GatewayError):
    status, code, decision = 413, PAYLOAD_TOO_LARGE, "error"
    kind = "body_too_large"


class ParseError(GatewayError):
    status, code, decision = 400, PARSE_ERROR, "error"
    kind = "parse_error"


class InvalidRequest(GatewayError):
    status, code, decision = 400, INVALID_REQUEST, "error"
    kind = "invalid_request"


class InvalidParams(GatewayError):
    status, code, decision = 400, INVALID_PARAMS, "error"
    kind = "invalid_params"


class ClientDisconnected(GatewayError):
    """The agent went away mid-request; nobody reads the reply, but the audit event records it."""

    status, code, decision = 499, INVALID_REQUEST, "error"
    kind = "client_disconnected"


class RateLimited(GatewayError):
    """A meter has no room for the call (429); carries Retry-After and the RateLimit fields."""

    status, code, decision = 429, RATE_LIMITED, "denied"
    kind = "rate_limited"


class TooManyAuthFailures(RateLimited):
    """The client's address failed authentication too often in the last minute (429, Retry-After):
    a rate limit, but no meter's, so metrics count it apart from meter refusals."""

    kind = "auth_throttled"


class MeterUnavailable(GatewayError):
    """A fail-closed meter cannot be checked because its counters are unreachable (503)."""

    status, code, decision = 503, METER_UNAVAILABLE, "error"
    kind = "meter_unavailable"


class ConfigurationUnavailable(GatewayError):
    """The policy of a call is not cached and the database cannot be read right now."""

    status, code, decision = 503, -32050, "error"
    kind = "configuration_unavailable"


class UpstreamUnavailable(GatewayError):
    status, code, decision = 502, UPSTREAM_UNAVAILABLE, "error"
    kind = "upstream_unavailable"


class UpstreamTimeout(GatewayError):
    """The upstream did not answer within the target's read timeout or the call's total deadline."""

    status, code, decision = 504, UPSTREAM_TIMEOUT, "error"
    kind = "upstream_timeout"


class ResponseTooLarge(GatewayError):
    """An upstream JSON body that a response step must parse passes GATEWAY_MAX_RESPONSE_BODY_BYTES."""

    status, code, decision = 502, UPSTREAM_TOO_LARGE, "error"
    kind = "response_too_large"


class EventTooLarge(GatewayError):
    """An upstream event-stream event passes GATEWAY_MAX_EVENT_BYTES: the stream to the agent ends."""

    status, code, decision = 502, UPSTREAM_TOO_LARGE, "error"
    kind = "event_too_large"


class ResponseUnprotectable(GatewayError):
    """An upstream reply that the credential's filters or redaction cannot be applied to safely (not
    JSON, nested too deeply): the agent gets this error instead of unprotected data."""

    status, code, decision = 502, RESPONSE_UNPROTECTABLE, "error"
    kind = "response_unprotectable"
