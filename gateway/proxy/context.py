"""The per-request context. Each field has one owning step, named in its comment."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gateway.proxy.jsonrpc import Route
from policies.compiler import CompiledCredential, CompiledTarget
from policies.protect import ProtectionTally, RequestProtections

Receive = Callable[[], Awaitable[dict[str, Any]]]

if TYPE_CHECKING:
    from gateway.proxy.errors import GatewayError
    from gateway.proxy.runtime import ProxyRuntime
    from metering.call import MeteredCall


@dataclass(slots=True)
class ProxyContext:
    """What the pipeline knows about one proxied request."""

    # set by the view, from the ASGI scope
    runtime: ProxyRuntime
    receive: Receive
    method: str
    path: str  # as the agent sent it: the scope's raw_path, still percent-encoded (latin-1 text)
    query_string: str
    request_id: str
    started_at: datetime
    started: float = field(default_factory=time.perf_counter)
    client_ip: str | None = None
    scheme: str = "http"  # of the agent's request, for the URLs the gateway names back (OAuth metadata)
    headers: dict[str, str] = field(default_factory=dict)  # the agent's, lower-case names

    # normalize_path: the slug and the decoded, normalised sub-path rules are matched on
    target_slug: str = ""
    subpath: str = ""
    # resolve_target
    target: CompiledTarget | None = None
    # check_origin: the browser origin allowed to read the reply
    cors_origin: str = ""
    # authenticate
    credential: CompiledCredential | None = None
    # read_body
    body: bytes = b""
    # resolve_route
    messages: list[dict[str, Any]] | None = None
    is_batch: bool = False
    routes: list[Route] = field(default_factory=list)
    forward_body: bytes = b""  # what the upstream receives: the canonical JSON-RPC, or ``body``
    # bind_session
    agent_session_id: str = ""
    upstream_session_id: str = ""
    # check_scope: request ids of list calls whose results must be trimmed, by JSON-RPC method
    listings: dict[Any, str] = field(default_factory=dict)
    # select_protections: the filters and redactors each call's result gets, None when none apply
    protections: RequestProtections | None = None
    # protect_response: what the protections removed and redacted (counts only), for the audit event
    protection_tally: ProtectionTally | None = None
    # pin_listed_tools: tools removed from a tools/list result, and why (held, changed, unpinnable)
    hidden_tools: dict[str, str] = field(default_factory=dict)
    # check_meters (count_response_values adds the values it read and its notes)
    metering: MeteredCall | None = None
    # check_scope, select_protections, check_meters (any request step whose response step must parse
    # the reply): forward then reads a JSON body whole, bounded by GATEWAY_MAX_RESPONSE_BODY_BYTES;
    # otherwise it streams
    inspect_response: bool = False
    # forward (``upstream_seconds``: from sending the request to the upstream's response headers)
    upstream_status: int | None = None
    upstream_seconds: float | None = None
    status: int = 0
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: bytes | None = None
    response_stream: AsyncIterator[bytes] | None = None
    # record_audit (and whichever step stops the request)
    decision: str = "allowed"
    reason: str = ""
    error_kind: str = ""  # the stopping GatewayError's ``kind``: the metrics' bounded reason class
    response_bytes: int = 0

    @property
    def single_id(self) -> Any:
        """The JSON-RPC id to answer with: the request's own when it held exactly one message."""
        if self.messages and not self.is_batch:
            return self.messages[0].get("id")
        return None

    def stopped_by(self, error: GatewayError) -> None:
        """Record, for the audit event and the metrics, that ``error`` stopped the request (or, once
        streaming, ended its stream or replaced one of its events)."""
        self.decision, self.reason, self.error_kind = error.decision, error.audit_reason, error.kind

    @property
    def is_session_stream(self) -> bool:
        """A GET on an MCP target: the session's stream of server-initiated messages (and replies
        replayed on resumption), which answers no request of its own."""
        return self.method == "GET" and self.target is not None and self.target.is_mcp

    def require_target(self) -> CompiledTarget:
        """The resolved target; the pipeline order guarantees it for every step after resolve_target."""
        if self.target is None:
            raise RuntimeError("pipeline order broken: resolve_target has not run")
        return self.target

    def require_credential(self) -> CompiledCredential:
        """The authenticated credential; guaranteed for every step after authenticate."""
        if self.credential is None:
            raise RuntimeError("pipeline order broken: authenticate has not run")
        return self.credential
