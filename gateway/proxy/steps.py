"""The gateway's own pipeline steps: target, origin, authentication and its brute-force guard, body,
route, session, forward.

Each step reads what earlier steps wrote and writes only the context fields it owns.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncGenerator, AsyncIterator

from django.http.request import split_domain_port, validate_host

from gateway.oauth.tokens import access_token_authentic, looks_like_access_token, token_checksum
from gateway.proxy.context import ProxyContext
from gateway.proxy.errors import (
    AuthenticationFailed,
    BodyTooLarge,
    ClientDisconnected,
    CorsPreflight,
    Forbidden,
    GatewayError,
    InvalidRequest,
    SessionNotFound,
    TargetNotFound,
    TooManyAuthFailures,
    UpstreamUnavailable,
)
from gateway.proxy.jsonrpc import Route, parse_body, route_for
from gateway.proxy.jwt_verify import looks_like_jwt, read_unverified, verify
from gateway.proxy.paths import check_query_string, normalize_proxy_path
from gateway.proxy.sessions import SessionMalformed, SessionNotOwned, bind_session, unbind_session
from gateway.proxy.sse import whole_events
from gateway.proxy.upstream import (
    UpstreamTimeouts,
    agent_response_headers,
    send_upstream,
    upstream_request_headers,
    upstream_url,
)
from gateway.tokens import token_matches, token_prefix
from policies.compiler import CompiledCredential

_SESSION_METHODS = frozenset({"GET", "DELETE"})
# A JSON body up to this size is read whole even when no step needs it: memory stays bounded and
# the reply skips the streaming relay.
_SMALL_BODY_BYTES = 64 * 1024


async def check_host(ctx: ProxyContext) -> None:
    """Reads the ``Host`` header; raises InvalidRequest (400) for a host not in ALLOWED_HOSTS.

    The proxy runs ahead of Django's request handling, so it applies Django's host check itself.
    """
    host = ctx.headers.get("host", "")
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, ctx.runtime.allowed_hosts):
        raise InvalidRequest(f"Invalid Host header {host!r}: not in ALLOWED_HOSTS")


async def normalize_path(ctx: ProxyContext) -> None:
    """Reads ``path`` (the raw path) and ``query_string``; writes ``target_slug`` and ``subpath``.

    The one normalised form of the path: rules are matched on it and the upstream URL is built
    from it. Raises InvalidRequest (400) for a path or query string that cannot be taken safely.
    """
    check_query_string(ctx.query_string)
    normalized = normalize_proxy_path(ctx.path)
    ctx.target_slug, ctx.subpath = normalized.slug, normalized.subpath


async def resolve_target(ctx: ProxyContext) -> None:
    """Reads ``target_slug``; writes ``target``; raises TargetNotFound (404)."""
    if ctx.target_slug:
        ctx.target = await ctx.runtime.cache.target(ctx.target_slug)
    if ctx.target is None:
        raise TargetNotFound(f"No MCP target is served at /mcp/{ctx.target_slug}/")


def _presented_token(headers: dict[str, str]) -> str:
    """The token in ``Authorization: Bearer`` or, failing that, ``X-API-Key`` ("" when none)."""
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return headers.get("x-api-key", "").strip()


async def check_auth_failures(ctx: ProxyContext) -> None:
    """Reads ``client_ip``; writes nothing.

    Raises TooManyAuthFailures (429, with Retry-After) while the client's address has failed authentication
    GATEWAY_AUTH_FAILURES_PER_MINUTE times within the last minute, before any credential is looked up,
    so a flood of guesses costs no hashing nor signature check. A valid credential from that address
    is refused too until then. An address this process has not seen fail is not looked up (no Redis
    round trip); the count cannot be read, the call goes on (see ``gateway/proxy/auth_failures.py``).
    """
    retry_after = await ctx.runtime.auth_failures.retry_after(ctx.client_ip)
    if retry_after:
        raise TooManyAuthFailures(
            f"Too many failed authentications from this address: retry in {retry_after} s",
            data={"retry_after": retry_after},
            headers={"retry-after": str(retry_after)},
            audit_reason="too many failed authentications from this address",
        )


async def authenticate(ctx: ProxyContext) -> None:
    """Reads the agent's headers, ``client_ip``, ``scheme`` and ``target``; writes ``credential``.

    A gateway API key (``mgw_...``) is found by its prefix and checked against its digest; a JWT
    (three base64url parts) is verified with the key of the JWT credential its issuer and subject
    name; a gateway OAuth access token (``mgo_...``) is checked by its tag, then found by its digest,
    and must have been issued for this target (RFC 8707): the call acts as the token's credential,
    narrowed to the token's scopes. Raises AuthenticationFailed (401) for a missing, malformed,
    unknown, forged, revoked or expired credential, or a token of another target: the agent sees
    one message for all of them, the audit event the precise reason, and the
    ``WWW-Authenticate`` challenge names the target's protected resource metadata (RFC 9728). Each
    of them but a missing credential is counted against the client's address for
    ``check_auth_failures``. A malformed or forged token, an unknown prefix or a JWT of an unknown
    issuer is refused from memory, with no database query; so is a known OAuth token on a warm call.
    Raises Forbidden (403) for a credential not bound to this target. The token is never logged.
    """
    try:
        token = _presented_token(ctx.headers)
        if not token:
            raise AuthenticationFailed("No credential presented")
        try:
            ctx.credential = credential = await _token_credential(ctx, token)
            if credential.revoked:
                raise AuthenticationFailed("Credential revoked")
            if credential.expires_at is not None and credential.expires_at <= ctx.started_at:
                raise AuthenticationFailed("Credential expired")
        except AuthenticationFailed:
            await ctx.runtime.auth_failures.record_failure(ctx.client_ip)
            raise
    except AuthenticationFailed as error:
        error.headers["WWW-Authenticate"] = bearer_challenge(ctx)
        raise
    target = ctx.require_target()
    if target.id not in credential.target_ids or target.tenant_id != credential.tenant_id:
        raise Forbidden(f"Credential {credential.id} is not allowed to use target {target.slug!r}")
    ctx.runtime.last_used.touch(credential.id, ctx.started_at)


def bearer_challenge(ctx: ProxyContext) -> str:
    """``Bearer resource_metadata="..."``: where an OAuth client finds how to get a token for this
    target (RFC 9728 section 5.1, the MCP authorization spec)."""
    host = ctx.headers.get("host", "")
    url = f"{ctx.scheme}://{host}/.well-known/oauth-protected-resource/mcp/{ctx.target_slug}/"
    return f'Bearer realm="mcp-gateway", resource_metadata="{url}"'


async def _token_credential(ctx: ProxyContext, token: str) -> CompiledCredential:
    if looks_like_access_token(token):
        return await _oauth_credential(ctx, token)
    if looks_like_jwt(token):
        return await _jwt_credential(ctx, token)
    return await _api_key_credential(ctx, token)


async def _oauth_credential(ctx: ProxyContext, token: str) -> CompiledCredential:
    """The credential an OAuth access token acts as, narrowed to its scopes; from the cache (no query)
    on a warm call. A revoked token is unknown: revoking deletes it."""
    if not access_token_authentic(token):
        raise AuthenticationFailed("Malformed or forged OAuth token")
    cache = ctx.runtime.cache
    compiled = await cache.oauth_token(token_checksum(token))
    if compiled is None:
        raise AuthenticationFailed("Unknown or revoked OAuth token")
    if compiled.expires_at <= time.time():
        raise AuthenticationFailed("OAuth token expired")
    if ctx.require_target().id not in compiled.target_ids:
        raise AuthenticationFailed("OAuth token issued for another target (audience)")
    credential = await cache.credential(compiled.credential_prefix) if compiled.credential_prefix else None
    if credential is None:
        raise AuthenticationFailed("OAuth token of a client bound to no credential")
    narrowed: CompiledCredential = credential.narrowed_to(compiled.scope_rules)
    return narrowed


async def _api_key_credential(ctx: ProxyContext, token: str) -> CompiledCredential:
    prefix = token_prefix(token)
    if prefix is None:
        raise AuthenticationFailed("Malformed token")
    credential = await ctx.runtime.cache.credential(prefix)
    if credential is None:
        raise AuthenticationFailed("Unknown token prefix")
    if credential.jwt is not None:
        raise AuthenticationFailed("API key presented for a JWT credential")
    if not token_matches(token, credential.secret_hash):
        raise AuthenticationFailed("Token secret does not match its prefix")
    return credential


async def _jwt_credential(ctx: ProxyContext, token: str) -> CompiledCredential:
    """The credential a JWT was verified for: from the verified-token cache on a warm call, else by
    its unverified issuer and subject, then verified with that credential's key."""
    cache = ctx.runtime.cache
    digest, now = hashlib.sha256(token.encode()).digest(), time.time()
    known = cache.verified_jwts.get(digest, now)
    if known is not None:
        credential = await cache.credential(known)
        if credential is not None and credential.jwt is not None:
            return credential
    unverified = read_unverified(token)
    if unverified.issuer is None:
        raise AuthenticationFailed("JWT has no issuer")
    candidates = (await cache.jwt_directory()).candidates(unverified.issuer, unverified.claims)
    if candidates is None:
        raise AuthenticationFailed("Unknown JWT issuer")
    if len(candidates) != 1:
        raise AuthenticationFailed(
            "JWT subject matches no credential of its issuer"
            if not candidates
            else "JWT matches several credentials"
        )
    credential = await cache.credential(candidates[0])
    if credential is None or credential.jwt is None:
        raise AuthenticationFailed("Unknown JWT issuer")
    expires = await verify(token, unverified, credential.jwt, ctx.runtime.jwks)
    cache.verified_jwts.put(digest, credential.prefix, min(expires, now + ctx.runtime.jwks.ttl))
    return credential


async def check_origin(ctx: ProxyContext) -> None:
    """Reads the ``Origin`` header and ``target``; writes ``cors_origin``.

    Browsers send Origin; the Streamable HTTP transport requires servers to validate it against
    DNS rebinding. Non-browser agents send none and pass. An allowed origin gets CORS headers on
    every reply, and its preflight (OPTIONS, sent without credentials) is answered here.
    Raises Forbidden (403) for an origin not allowed, CorsPreflight (204) for a preflight.
    """
    origin = ctx.headers.get("origin")
    if origin is None:
        return
    if origin.rstrip("/") not in ctx.require_target().allowed_origins:
        raise Forbidden(f"Origin {origin!r} is not allowed for this target")
    ctx.cors_origin = origin
    if ctx.method == "OPTIONS" and "access-control-request-method" in ctx.headers:
        raise CorsPreflight("CORS preflight answered")


async def read_body(ctx: ProxyContext) -> None:
    """Reads the request body from the ASGI stream; writes ``body``.

    Raises BodyTooLarge (413) as soon as the declared or received size passes
    MAX_REQUEST_BODY_BYTES, without buffering the rest.
    """
    limit = ctx.runtime.conf.max_request_body_bytes
    declared = ctx.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"Request body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await ctx.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected("Client disconnected before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"Request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    ctx.body = b"".join(chunks)


async def resolve_route(ctx: ProxyContext) -> None:
    """Reads ``target``, the method, ``subpath`` and ``body``; writes ``messages``, ``is_batch``,
    ``routes`` and ``forward_body``.

    An MCP target is one endpoint: its POST is JSON-RPC, routed per message (``tools/call`` of
    ``x`` is ``POST /tools/x``) and forwarded as the canonical re-serialisation of what was parsed;
    its GET and DELETE are session plumbing. A plain HTTP target's request is routed as
    ``METHOD /sub-path`` and its body forwarded as received. Raises TargetNotFound (404) for a
    sub-path under an MCP target, ParseError / InvalidRequest / InvalidParams (400).
    """
    target = ctx.require_target()
    method = ctx.method
    path = ctx.subpath or "/"
    ctx.forward_body = ctx.body
    if not target.is_mcp:
        ctx.routes = [Route(method, path)]
        return
    if path != "/":
        raise TargetNotFound(f"Not found: MCP target {target.slug!r} is served at /mcp/{target.slug}/ only")
    if method in _SESSION_METHODS:
        ctx.routes = [Route(method, path, plumbing=True)]
        return
    if method != "POST":
        ctx.routes = [Route(method, path)]
        return
    parsed = parse_body(ctx.body)
    ctx.messages, ctx.is_batch, ctx.forward_body = parsed.messages, parsed.is_batch, parsed.canonical
    ctx.routes = [route_for(message) for message in ctx.messages]
    _check_mcp_headers(ctx)


def _check_mcp_headers(ctx: ProxyContext) -> None:
    """Mcp-Method / Mcp-Name must agree with the body, or an upstream routing on them is misled."""
    header_method = ctx.headers.get("mcp-method")
    header_name = ctx.headers.get("mcp-name")
    if header_method is None and header_name is None:
        return
    route = ctx.routes[0]
    if ctx.is_batch or (header_method is not None and header_method != route.jsonrpc_method):
        raise InvalidRequest("Invalid Request: Mcp-Method header does not match the JSON-RPC body")
    if header_name is not None and header_name != route.name:
        raise InvalidRequest("Invalid Request: Mcp-Name header does not match the JSON-RPC body")


async def bind_session_id(ctx: ProxyContext) -> None:
    """Reads ``Mcp-Session-Id``, ``credential`` and ``target``; writes the agent and upstream session ids.

    Raises Forbidden (403) when the session belongs to another credential or target, and
    SessionNotFound (404) when the id was never issued by this gateway: tampered with, malformed,
    not ASCII, or sealed with a key the gateway no longer has. Only an id the gateway issued is
    kept for the audit event.
    """
    agent_id = ctx.headers.get("mcp-session-id", "")
    if not agent_id:
        return
    try:
        ctx.upstream_session_id = unbind_session(
            credential_id=ctx.require_credential().id, target_id=ctx.require_target().id, agent_id=agent_id
        )
    except SessionNotOwned:
        ctx.agent_session_id = agent_id
        raise Forbidden("Session belongs to another credential: a session id is not a credential") from None
    except SessionMalformed:
        raise SessionNotFound("Session not found: start a new session") from None
    ctx.agent_session_id = agent_id


async def forward(ctx: ProxyContext) -> None:
    """Reads everything above, ``inspect_response`` last; writes ``upstream_status``, ``upstream_seconds``
    (until the response headers), ``status``, headers and the body (or stream).

    Every call but the session's GET event stream has a total deadline
    (GATEWAY_UPSTREAM_DEADLINE_SECONDS) besides the target's per-read timeout. A JSON body is read
    whole, bounded by GATEWAY_MAX_RESPONSE_BODY_BYTES, when a response step must parse it
    (``inspect_response``) or when it declares a length of one read at most; any other body is
    streamed as it arrives, in constant memory, an event stream cut into whole events of at most
    GATEWAY_MAX_EVENT_BYTES. Once streaming, a failure (deadline, oversized event, broken upstream)
    ends the stream and the audit event records it as an error. Raises UpstreamUnavailable or
    ResponseTooLarge (502) and UpstreamTimeout (504) before the status is sent.
    """
    target = ctx.require_target()
    if target.upstream_refused:  # an IP address written out never reaches the resolver's check
        raise UpstreamUnavailable(
            f"Upstream of target {target.slug!r} not reached: {target.upstream_refused}"
        )
    conf = ctx.runtime.conf
    # The session's GET event stream may rightly stay open, and quiet, for a long time.
    session_stream = ctx.is_session_stream
    url = upstream_url(target.upstream_url, ctx.subpath, ctx.query_string)
    sent = time.perf_counter()
    response = await send_upstream(
        ctx.runtime.client,
        ctx.method,
        url,
        headers=upstream_request_headers(
            ctx.headers,
            injected=target.upstream_headers,
            upstream_session_id=ctx.upstream_session_id,
            request_id=ctx.request_id,
        ),
        body=ctx.forward_body,
        timeouts=UpstreamTimeouts(
            connect=conf.upstream_connect_timeout,
            read=target.timeout_seconds,
            unbounded_read=session_stream,
            total=None if session_stream else conf.upstream_deadline_seconds,
        ),
        target_slug=target.slug,
    )
    ctx.upstream_seconds = time.perf_counter() - sent
    ctx.upstream_status = ctx.status = response.status
    ctx.response_headers = agent_response_headers(
        response.headers, target_slug=target.slug, base_url=target.upstream_url, request_url=url
    )
    _set_session_header(ctx, response.headers.get("mcp-session-id"))
    content_type = response.headers.get("content-type", "")
    if content_type.startswith("application/json") and _reads_whole(ctx, response.declared_length):
        ctx.response_body = await response.read_whole(conf.max_response_body_bytes)
    elif content_type.startswith("text/event-stream"):
        ctx.response_stream = _ended_on_failure(ctx, whole_events(response.chunks(), conf.max_event_bytes))
    else:
        ctx.response_stream = _ended_on_failure(ctx, response.chunks())


def _reads_whole(ctx: ProxyContext, declared_length: int | None) -> bool:
    """A step must parse the body, or it is small: reading it whole costs less than relaying it."""
    return ctx.inspect_response or (declared_length is not None and declared_length <= _SMALL_BODY_BYTES)


async def _ended_on_failure(ctx: ProxyContext, stream: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    """``stream`` until it ends or fails; a failure is recorded for the audit event (the status is sent)."""
    try:
        async for chunk in stream:
            yield chunk
    except GatewayError as error:
        ctx.stopped_by(error)
    finally:
        await stream.aclose()


def _set_session_header(ctx: ProxyContext, upstream_id: str | None) -> None:
    """Give the agent the sealed form of the upstream's session id, never the id itself."""
    if not upstream_id or ctx.credential is None or ctx.target is None:
        return
    if upstream_id == ctx.upstream_session_id:  # the session the agent presented: its id still holds
        ctx.response_headers["mcp-session-id"] = ctx.agent_session_id
        return
    ctx.response_headers["mcp-session-id"] = bind_session(
        credential_id=ctx.credential.id, target_id=ctx.target.id, upstream_id=upstream_id
    )
