"""The upstream used by the tests: a real MCP server (the official ``mcp`` package's MCPServer,
formerly FastMCP) that also records the headers of every request it receives."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import orjson
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)
# What the ``profile`` tool returns, as structured content and as JSON text.
PROFILE: dict[str, Any] = {
    "id": "int-123",
    "owner": {"email": "a@b.example", "id": "owner-9"},
    "items": [{"id": "item-1", "name": "first"}, {"id": "item-2", "name": "second"}],
    "card": "4111 1111 1111 1111",  # Luhn-valid
    "order_number": "4111 1111 1111 1112",  # the same digits, Luhn-invalid: not a card
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "session": JWT,
}
# Personal data the ``charge`` tool puts in its JSON-RPC error and ``audited_read`` in its log message.
CUSTOMER_EMAIL = "jane.doe@customer.example"


def build_upstream() -> tuple[Any, list[dict[str, str]]]:
    """The ASGI app of the test MCP server, and the list its requests' headers are appended to."""
    server = MCPServer("test-upstream")

    @server.tool()
    def search(query: str) -> dict[str, Any]:
        """Search the documents."""
        return {"hits": [f"result for {query}"], "usage": {"total_tokens": 400}}

    @server.tool()
    def profile() -> dict[str, Any]:
        """A record full of what an agent should not see: ids, an owner, a card, keys."""
        return dict(PROFILE)

    @server.tool()
    def delete_all() -> str:
        """Delete every document."""
        return "deleted everything"

    @server.tool()
    def charge() -> str:
        """Charge the customer: refused with a JSON-RPC error that names the customer and the card."""
        raise MCPError(
            code=-32001,
            message=f"card {PROFILE['card']} of {CUSTOMER_EMAIL} was declined",
            data={"customer": CUSTOMER_EMAIL, "retry": False},
        )

    @server.tool()
    async def audited_read(ctx: Context) -> str:
        """Read a record, logging who it belongs to while the call runs."""
        with warnings.catch_warnings():  # the SDK deprecates logging for 2026-07-28; 2025 sessions have it
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await ctx.info(f"record of {CUSTOMER_EMAIL} read")
        return "read"

    @server.tool()
    async def slow_count(steps: int, ctx: Context) -> str:
        """Count to ``steps``, reporting progress at each step."""
        for step in range(1, steps + 1):
            await ctx.report_progress(step, steps, f"step {step}")
            await asyncio.sleep(0.3)
        return f"counted to {steps}"

    @server.resource("docs://{name}")
    def doc(name: str) -> str:
        """A document."""
        return f"contents of {name}"

    @server.prompt()
    def summarize(topic: str) -> str:
        """Summarize a topic."""
        return f"Summarize {topic}"

    seen: list[dict[str, str]] = []
    inner = server.streamable_http_app()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append({k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]})
        await inner(scope, receive, send)

    return app, seen


# Small pieces for the hand-written ASGI upstreams some tests need (logging, hostile, differently parsing).


async def answer_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> bool:
    """Answer a lifespan scope (start-up and shut-down); True when ``scope`` was one."""
    if scope["type"] != "lifespan":
        return False
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})
    return True


async def read_request_body(receive: Any) -> bytes:
    """The whole body of an HTTP request scope."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def send_reply(
    send: Any, body: bytes, content_type: bytes = b"application/json", status: int = 200
) -> None:
    """A whole response in one body message."""
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]}
    )
    await send({"type": "http.response.body", "body": body})


class ChangingUpstream:
    """A real MCP server whose tools a test can redefine between sessions (a "rug pull"), and which logs
    every tool call it runs, so a test can tell that a refused call never arrived."""

    def __init__(self, *, json_response: bool = False) -> None:
        self.server = MCPServer("changing-upstream")
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.json_response = json_response
        self.define("lookup", "Look up a record by its query.")

    def define(self, name: str, description: str) -> None:
        """(Re)define tool ``name`` (arguments: ``query: str``, ``limit: int = 10``) with ``description``."""
        calls = self.calls

        def lookup(query: str, limit: int = 10) -> dict[str, Any]:
            calls.append((name, {"query": query, "limit": limit}))
            return {"records": [f"{query}:{i}" for i in range(min(limit, 3))]}

        if name in {tool.name for tool in self.server._tool_manager.list_tools()}:
            self.server.remove_tool(name)
        self.server.add_tool(lookup, name=name, description=description)

    def app(self) -> Any:
        return self.server.streamable_http_app(json_response=self.json_response)


async def answer_initialize(receive: Any, send: Any, session_id: str) -> None:
    """Answer a POSTed ``initialize`` with a JSON reply that opens upstream session ``session_id``."""
    request = orjson.loads(await read_request_body(receive))
    body = orjson.dumps({"jsonrpc": "2.0", "id": request["id"], "result": {"protocolVersion": "2025-06-18"}})
    headers = [(b"content-type", b"application/json"), (b"mcp-session-id", session_id.encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
