"""Upstreams that read JSON differently from the gateway never run a tool the credential may not call.

Two loopback MCP-ish upstreams "execute" a tool by recording its name: one keeps the FIRST of
duplicate keys (the gateway's parser keeps the last), one matches member names case-insensitively,
with Unicode folding, as Go's ``encoding/json`` does. The credential may only call ``search``.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from gateway.services import target_create
from tests.conftest import issue_credential
from tests.servers import ServerThread
from tests.upstream import answer_lifespan, read_request_body, send_reply


def first_key_wins(body: bytes) -> Any:
    return json.loads(body, object_pairs_hook=lambda pairs: dict(reversed(pairs)))


def _go_fold(key: str) -> str:
    return unicodedata.normalize("NFKC", key).casefold()


def go_like(body: bytes) -> Any:
    """Objects whose members are found by folded name, the last match winning, as Go does."""
    return json.loads(body, object_pairs_hook=lambda pairs: {_go_fold(key): value for key, value in pairs})


class ToolServer:
    """An ASGI upstream that runs ``tools/call`` as its own parser reads it and records the tool."""

    def __init__(self, parse: Any) -> None:
        self.parse = parse
        self.ran: list[str] = []
        self.bodies: list[bytes] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if await answer_lifespan(scope, receive, send):
            return
        body = await read_request_body(receive)
        self.bodies.append(body)
        payload = self.parse(body) if body else {}
        messages = payload if isinstance(payload, list) else [payload]
        replies = [self._execute(message) for message in messages if isinstance(message, dict)]
        reply = replies if isinstance(payload, list) else replies[0] if replies else {}
        await send_reply(send, json.dumps(reply).encode())

    def _execute(self, message: dict[str, Any]) -> dict[str, Any]:
        params = message.get("params")
        if message.get("method") == "tools/call" and isinstance(params, dict):
            self.ran.append(str(params.get("name")))
        return {"jsonrpc": "2.0", "id": message.get("id"), "result": {"content": []}}


@pytest.fixture(scope="module")
def tool_servers() -> Iterator[dict[str, tuple[ToolServer, ServerThread]]]:
    servers = {}
    for name, parse in (("first", first_key_wins), ("gofold", go_like)):
        app = ToolServer(parse)
        servers[name] = (app, ServerThread(app).start())
    yield servers
    for _, server in servers.values():
        server.stop()


@pytest.fixture
def agent(gateway, tenant, tool_servers):
    """Post a body to each upstream through the gateway; the statuses, and the tools each ran."""
    tokens = {}
    for name, (app, server) in tool_servers.items():
        app.ran.clear()
        app.bodies.clear()
        target = target_create(tenant=tenant, slug=name, upstream_url=f"{server.url}/mcp")
        tokens[name] = issue_credential(tenant, target, "POST /tools/search", name=f"agent-{name}").token

    def post(body: bytes) -> dict[str, int]:
        statuses = {}
        for name in tool_servers:
            response = httpx2.post(
                gateway.proxy_url(name),
                content=body,
                headers={"Authorization": f"Bearer {tokens[name]}", "Content-Type": "application/json"},
                timeout=30,
            )
            statuses[name] = response.status_code
        return statuses

    return post


def _ran(tool_servers: dict[str, tuple[ToolServer, ServerThread]]) -> dict[str, list[str]]:
    return {name: app.ran for name, (app, _) in tool_servers.items()}


TRICKS = [
    b'{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call","params":{"name":"delete_all"}}',
    b'{"jsonrpc":"2.0","id":1,"Method":"tools/call","method":"ping","params":{"name":"delete_all"}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"ping","params":{"name":"delete_all"}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_all","name":"search"}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","Name":"delete_all"}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","NAME":"delete_all"}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","na\\u006de":"delete_all"}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search"},"Params":{"name":"delete_all"}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search"},"param\\u017f":{"name":"delete_all"}}',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search"},"param\u017f":{"name":"delete_all"}}'.encode(),
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_all"},"params":{"name":"search"}}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"\\u212aey":1,"name":"search","nam\\u0065":"delete_all"}}',
    b'[{"jsonrpc":"2.0","id":1,"method":"ping"},'
    b'{"jsonrpc":"2.0","id":2,"method":"ping","METHOD":"tools/call","params":{"name":"delete_all"}}]',
]


def test_no_upstream_parser_runs_a_denied_tool_whatever_the_body(agent, tool_servers):
    statuses = [(body, agent(body)) for body in TRICKS]
    assert [(body, status) for body, status in statuses if status != {"first": 400, "gofold": 400}] == []
    assert _ran(tool_servers) == {"first": [], "gofold": []}


def test_an_allowed_call_runs_on_both_upstreams_from_the_canonical_bytes(agent, tool_servers):
    body = b'{ "jsonrpc" : "2.0",\n "id" : 1, "method" : "tools/call", "params" : { "name" : "search" } }'
    statuses = agent(body)
    assert statuses == {"first": 200, "gofold": 200}
    assert _ran(tool_servers) == {"first": ["search"], "gofold": ["search"]}
    canonical = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search"}}'
    assert [app.bodies for app, _ in tool_servers.values()] == [[canonical], [canonical]]
