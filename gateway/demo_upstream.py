"""The bundled demo MCP server (official ``mcp`` SDK) that ``manage.py demo`` puts behind the gateway.

Run on its own: ``DEMO_UPSTREAM_TOKEN=... python -m gateway.demo_upstream --port 8765``. It expects
that bearer token (the upstream's own credential, which the gateway injects and agents never see);
it is read from the environment rather than the command line, which other local users can read.
"""

from __future__ import annotations

import argparse
import hmac
import os
from datetime import UTC, datetime
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer

DOCS = {
    "gateway": "An MCP gateway enforces policy on every tool call between agents and MCP servers.",
    "audit": "Every proxied call leaves one audit event.",
}


def build_demo_server() -> MCPServer:
    server = MCPServer("demo-docs")

    @server.tool()
    def search_docs(query: str) -> dict[str, Any]:
        """Search the demo documents."""
        hits = [name for name, text in DOCS.items() if query.lower() in (name + " " + text).lower()]
        return {"hits": hits, "usage": {"total_tokens": 12 * (len(hits) + 1)}}

    @server.tool()
    def current_time() -> str:
        """The current UTC time."""
        return datetime.now(UTC).isoformat()

    @server.tool()
    def delete_all_documents() -> str:
        """Delete every document (the demo credential is not allowed to call this)."""
        DOCS.clear()
        return "all documents deleted"

    @server.resource("docs://{name}")
    def document(name: str) -> str:
        """One demo document."""
        return DOCS.get(name, "")

    return server


def build_app(token: str) -> Any:
    """The demo server's ASGI app, refusing requests without the upstream token."""
    inner = build_demo_server().streamable_http_app()
    expected = f"Bearer {token}".encode()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            presented = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(presented, expected):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"text/plain")],
                    }
                )
                await send({"type": "http.response.body", "body": b"demo upstream: bad upstream credential"})
                return
        await inner(scope, receive, send)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    token = os.environ.get("DEMO_UPSTREAM_TOKEN", "")
    if not token:
        parser.error("set DEMO_UPSTREAM_TOKEN to the bearer token this server expects")
    uvicorn.run(build_app(token), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
