"""Acceptance: a stock MCP client through the gateway (uvicorn) to a real MCP server."""

from __future__ import annotations

import time

import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from audit.models import AuditEvent
from gateway.services import credential_revoke
from tests.conftest import UPSTREAM_SECRET, issue_credential, mcp_client, run


def audit_events(gateway) -> list[AuditEvent]:
    gateway.flush_audit()
    return list(AuditEvent.objects.order_by("id"))


def test_tools_list_shows_only_the_tools_the_credential_may_call(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")

    async def agent() -> list[str]:
        async with mcp_client(gateway.proxy_url("docs"), issued.token) as client:
            return [tool.name for tool in (await client.list_tools()).tools]

    assert run(agent()) == ["search"]
