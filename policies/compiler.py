"""Compile configuration rows into frozen policy objects for the hot path.

The proxy never reads models: it reads :class:`CompiledTarget` and :class:`CompiledCredential`,
built here once per change (globs parsed into regular expressions, upstream secrets decrypted) and
cached per process by :mod:`policies.cache`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache

from policies.content import CompiledFilter
from policies.redaction import Redactor
from policies.tools import ArgumentValidator

ANY_METHOD = "*"


@lru_cache(maxsize=4096)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """Turn a path glob into an anchored regex: ``*`` stays inside one segment, ``**`` crosses them."""
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        elif pattern[index] == "*":
            parts.append("[^/]*")
            index += 1
        else:
            parts.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(parts), re.DOTALL)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """One allow-rule, ready to match."""

    id: int
    method: str
    path: str
    description: str
    regex: re.Pattern[str]

    def matches(self, method: str, path: str) -> bool:
        return (self.method == ANY_METHOD or self.method == method) and self.regex.fullmatch(path) is not None

    def as_metadata(self) -> dict[str, object]:
        return {"id": self.id, "method": self.method, "path": self.path, "description": self.description}


def compile_rule(*, rule_id: int, method: str, path: str, description: str = "") -> CompiledRule:
    method = method.strip().upper() or ANY_METHOD
    return CompiledRule(
        id=rule_id, method=method, path=path, description=description, regex=compile_glob(path)
    )


@dataclass(frozen=True, slots=True)
class RouteScope:
    """The calls a filter or redactor applies to: every routed call, or those matching ``METHOD /glob``."""

    method: str = ANY_METHOD
    regex: re.Pattern[str] | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.regex is None:
            return True
        return (self.method == ANY_METHOD or self.method == method) and self.regex.fullmatch(path) is not None


EVERY_ROUTE = RouteScope()


def compile_route_scope(route: str) -> RouteScope:
    """``'POST /tools/*'`` as a RouteScope (glob compiled once); a blank route is every call.

    The text was validated when saved (policies/protection.py); ValueError if it is not usable.
    """
    route = route.strip()
    if not route:
        return EVERY_ROUTE
    method, _, path = route.partition(" ")
    path = path.strip()
    if not method or not path.startswith("/"):
        raise ValueError(f"A route must be 'METHOD /path-glob', e.g. 'POST /tools/*'; got {route!r}")
    return RouteScope(method.upper(), compile_glob(path))


@dataclass(frozen=True, slots=True)
class ScopedFilter:
    """A compiled response filter and the calls it applies to (``target_id``: only calls to that target)."""

    target_id: int | None
    route: RouteScope
    filter: CompiledFilter


@dataclass(frozen=True, slots=True)
class ScopedRedactor:
    """A compiled redactor (detectors, action, mode, the tenant's pseudonym key) and its calls."""

    id: int
    target_id: int | None
    route: RouteScope
    redactor: Redactor

    def __repr__(self) -> str:
        # The redactor holds the tenant's pseudonym key: keep it out of reprs and tracebacks.
        return f"ScopedRedactor(id={self.id}, action={self.redactor.action}, mode={self.redactor.mode})"


@dataclass(frozen=True, slots=True)
class CompiledJwt:
    """How a JWT credential's tokens are verified: the claims required and one key source.

    ``algorithm`` and ``key`` are set for a static key (HS256 secret bytes, or an RSA / EC public key
    object and the one algorithm it allows); for a JWKS they are empty and ``jwks_url`` is set.
    """

    issuer: str
    audience: str
    subject_claim: str
    subject: str
    leeway_seconds: int
    algorithm: str = ""
    key: object = None
    jwks_url: str = ""

    def __repr__(self) -> str:
        # An HS256 key is the shared secret: keep it out of every repr, traceback and log line.
        return f"CompiledJwt(issuer={self.issuer!r}, subject={self.subject!r}, algorithm={self.algorithm!r})"


@dataclass(frozen=True, slots=True)
class CompiledCredential:
    """Everything the proxy needs to know about one credential (``jwt`` set for a JWT credential)."""

    id: int
    tenant_id: int
    name: str
    prefix: str
    secret_hash: str
    expires_at: datetime | None
    revoked: bool
    target_ids: frozenset[int]
    rules: tuple[CompiledRule, ...]
    # Response protections, stacked tenant first, then target, then credential, each in order.
    filters: tuple[ScopedFilter, ...] = ()
    redactors: tuple[ScopedRedactor, ...] = ()
    jwt: CompiledJwt | None = None
    # Set for a call made with an OAuth token: the rules its scopes stand for. A call must match one
    # of them as well as a rule of the credential, so a token narrows its credential, never widens it.
    token_rules: tuple[CompiledRule, ...] | None = None

    def matching_rule(self, method: str, path: str) -> CompiledRule | None:
        """The first rule (in order) that allows ``method path``, or None: deny by default."""
        if self.token_rules is not None and not any(rule.matches(method, path) for rule in self.token_rules):
            return None
        for rule in self.rules:
            if rule.matches(method, path):
                return rule
        return None

    def allows(self, method: str, path: str) -> bool:
        return self.matching_rule(method, path) is not None

    def narrowed_to(self, token_rules: tuple[CompiledRule, ...] | None) -> CompiledCredential:
        """This credential as a token with ``token_rules`` (None: not narrowed) may use it."""
        return self if token_rules is None else replace(self, token_rules=token_rules)

    def rules_metadata(self) -> list[dict[str, object]]:
        return [rule.as_metadata() for rule in self.rules]


@dataclass(frozen=True, slots=True)
class CompiledTool:
    """A pinned tool of a target: may agents see and call it, and the schema its arguments must pass.

    ``served_hash`` is the definition the gateway last saw listed; ``approved_hash`` the one an admin
    (or the first-sight rule) approved. Only an approved tool whose served definition is the approved
    one is listed and callable.
    """

    name: str
    state: str
    approved_hash: str
    served_hash: str
    validator: ArgumentValidator | None = None

    @property
    def callable(self) -> bool:
        return self.state == "approved" and self.served_hash == self.approved_hash


@dataclass(frozen=True, slots=True)
class CompiledTarget:
    """Everything the proxy needs to know about one target, its upstream secret decrypted."""

    id: int
    tenant_id: int
    slug: str
    kind: str
    upstream_url: str
    upstream_headers: tuple[tuple[str, str], ...]
    timeout_seconds: float
    allowed_origins: frozenset[str]
    # Why the SSRF policy refuses the upstream's IP address when the URL writes one out ("" if not);
    # a host name is judged on each new connection instead (gateway/egress.py).
    upstream_refused: str = ""
    # Tool pinning (MCP targets): the pinned tools by name, and the target's settings.
    tools: Mapping[str, CompiledTool] = field(default_factory=dict)
    hold_new_tools: bool = False
    validate_arguments: bool = True

    @property
    def is_mcp(self) -> bool:
        return self.kind == "mcp"

    def __repr__(self) -> str:
        # The upstream headers hold a secret: keep them out of every repr, traceback and log line.
        return f"CompiledTarget(id={self.id}, slug={self.slug!r}, upstream_url={self.upstream_url!r})"
