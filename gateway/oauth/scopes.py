"""OAuth scopes and the allow-rules they stand for.

A scope names calls the way an allow-rule does: ``tools:NAME`` is ``POST /tools/NAME``,
``prompts:NAME`` is ``POST /prompts/NAME`` and ``resources:URI`` is ``POST /resources/URI`` (a name
may be a glob, ``tools:*``); ``mcp`` is every call the credential allows. A token's scopes narrow
its credential's rules and never widen them: a call must match a rule of the credential *and* a
scope of the token (``CompiledCredential.token_rules``).
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from typing import Any

from oauth2_provider.scopes import BaseScopes

from policies.compiler import CompiledRule, compile_rule

MCP_SCOPE = "mcp"
SCOPE_KINDS = {"tools": "/tools/", "prompts": "/prompts/", "resources": "/resources/"}
MAX_SCOPE_LENGTH = 200
# RFC 6749 section 3.3: a scope token is printable ASCII but space, double quote and backslash.
_SCOPE_CHARS = frozenset(string.printable) - frozenset(string.whitespace) - {'"', "\\"}


def scope_problem(scope: str) -> str | None:
    """Why ``scope`` is not a scope the gateway can map to allow-rules (None when it is)."""
    if scope == MCP_SCOPE:
        return None
    kind, _, name = scope.partition(":")
    if len(scope) > MAX_SCOPE_LENGTH or not _SCOPE_CHARS.issuperset(scope):
        return f"{scope[:40]!r}: a scope is printable ASCII without spaces, at most {MAX_SCOPE_LENGTH} long"
    if kind not in SCOPE_KINDS or not name:
        return f"{scope!r}: a scope is 'mcp' or tools:NAME, prompts:NAME or resources:URI"
    return None


def scope_route(scope: str) -> tuple[str, str]:
    """The allow-rule ``(method, path glob)`` a valid scope other than ``mcp`` stands for."""
    kind, _, name = scope.partition(":")
    return "POST", SCOPE_KINDS[kind] + name


def scope_rules(scopes: Iterable[str]) -> tuple[CompiledRule, ...] | None:
    """The rules a token with ``scopes`` is narrowed to; None (no narrowing) when ``mcp`` is among them.

    An unknown scope stands for no call at all, so a token never gains anything from it.
    """
    scopes = list(scopes)
    if MCP_SCOPE in scopes:
        return None
    routes = [scope_route(scope) for scope in scopes if scope_problem(scope) is None]
    return tuple(
        compile_rule(rule_id=0, method=method, path=path, description="OAuth scope")
        for method, path in dict.fromkeys(routes)
    )


def describe_scope(scope: str) -> str:
    """What the consent page says a scope allows."""
    if scope == MCP_SCOPE:
        return "every call the client's credential allows"
    if scope_problem(scope) is not None:
        return "not a scope of this gateway (allows nothing)"
    kind, _, name = scope.partition(":")
    verbs = {"tools": "call the tool", "prompts": "get the prompt", "resources": "read the resource"}
    return f"{verbs[kind]}{'s matching' if '*' in name else ''} {name}"


class _Described(dict[str, str]):
    """Every scope described on demand: scopes are open-ended (tool names), not a fixed list."""

    def __missing__(self, scope: str) -> str:
        return describe_scope(scope)


class GatewayScopes(BaseScopes):  # type: ignore[misc]
    """django-oauth-toolkit's scope backend: ``mcp`` by default, any well-formed scope on request
    (the consent view limits registered clients to their tenant's scopes)."""

    def get_all_scopes(self) -> dict[str, str]:
        return _Described({MCP_SCOPE: describe_scope(MCP_SCOPE)})

    def get_available_scopes(
        self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any
    ) -> list[str]:
        return [MCP_SCOPE]

    def get_default_scopes(
        self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any
    ) -> list[str]:
        return [MCP_SCOPE]
