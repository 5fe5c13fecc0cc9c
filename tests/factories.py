"""Factories: the compiled policy objects that unit tests of one step build by hand, and pins made as
the gateway makes them (a listing recorded through ``tool_definitions_record``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from django.utils import timezone

from gateway.models import Target
from gateway.proxy.context import ProxyContext
from policies.compiler import CompiledCredential, CompiledTarget
from policies.models import PinnedTool
from policies.services import ListingWitness, tool_definitions_record
from policies.tools import ToolDefinition


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


def proxy_context(**fields: Any) -> ProxyContext:
    """A POST to ``/mcp/docs/`` answered 200, for a unit test of one step; ``fields`` set the rest
    (``target``, ``credential``, ``routes`` ...). Its runtime holds only what steps read of it."""
    defaults: dict[str, Any] = {
        "runtime": SimpleNamespace(conf=SimpleNamespace(max_event_bytes=1 << 20)),
        "receive": None,
        "method": "POST",
        "path": "/mcp/docs/",
        "query_string": "",
        "request_id": "unit",
        "started_at": timezone.now(),
        "status": 200,
    }
    return ProxyContext(**{**defaults, **fields})


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


SCHEMA = {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}


def listed(
    target: Target, name: str = "search", description: str = "Search the docs.", **extra: Any
) -> PinnedTool:
    """Record that ``target`` listed tool ``name`` with ``description``; return its pin."""
    item = {"name": name, "description": description, "inputSchema": SCHEMA, **extra}
    tool_definitions_record(
        target_id=target.pk, definitions=[ToolDefinition.from_listing(item)], witness=ListingWitness("r1")
    )
    return PinnedTool.objects.get(target=target, name=name)
