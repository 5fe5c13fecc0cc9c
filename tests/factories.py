"""Factories for the compiled policy objects that unit tests of one step build by hand."""

from __future__ import annotations

from typing import Any

from policies.compiler import CompiledCredential, CompiledTarget


def compiled_credential(**overrides: Any) -> CompiledCredential:
    """An active credential of tenant 1 that may reach target 1, with no rule unless given."""
    fields: dict[str, Any] = {
        "id": 1,
        "tenant_id": 1,
        "name": "a",
        "prefix": "p",
        "secret_hash": "h",
        "expires_at": None,
        "revoked": False,
        "target_ids": frozenset({1}),
        "rules": (),
    }
    return CompiledCredential(**{**fields, **overrides})


def compiled_target(**overrides: Any) -> CompiledTarget:
    """MCP target 1 of tenant 1, slug ``docs``, with no upstream secret and no pinned tool unless given."""
    fields: dict[str, Any] = {
        "id": 1,
        "tenant_id": 1,
        "slug": "docs",
        "kind": "mcp",
        "upstream_url": "http://upstream",
        "upstream_headers": (),
        "timeout_seconds": 5.0,
        "allowed_origins": frozenset(),
    }
    return CompiledTarget(**{**fields, **overrides})
