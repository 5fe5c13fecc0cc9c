"""Pins made as the gateway makes them: a listing recorded through ``tool_definitions_record``."""

from __future__ import annotations

from typing import Any

from gateway.models import Target
from policies.models import PinnedTool
from policies.services import ListingWitness, tool_definitions_record
from policies.tools import ToolDefinition

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
