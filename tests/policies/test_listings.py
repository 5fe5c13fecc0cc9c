"""Listings show only what the credential may call, whatever id the request carries (null included)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import orjson
import pytest

from gateway.services import target_create
from tests.conftest import issue_credential
from tests.servers import ServerThread
from tests.upstream import read_request_body, send_reply

LISTED = {
    "tools/list": (
        "tools",
        [{"name": n, "inputSchema": {"type": "object"}} for n in ("search", "delete_all")],
    ),
    "resources/list": ("resources", [{"uri": u, "name": u} for u in ("docs://a", "secret://b")]),
    "prompts/list": ("prompts", [{"name": n} for n in ("summarize", "exfiltrate")]),
}


def _listing_upstream(event_stream: bool) -> Any:
    """An MCP-ish upstream that answers every listing request with every item, echoing its id."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_request_body(receive)
        request = orjson.loads(body)
        key, items = LISTED[request["method"]]
        reply = orjson.dumps({"jsonrpc": "2.0", "id": request["id"], "result": {key: items}})
        if event_stream:
            content_type, reply = b"text/event-stream", b"event: message\ndata: " + reply + b"\n\n"
        else:
            content_type = b"application/json"
        await send_reply(send, reply, content_type)

    return app


@pytest.fixture(params=[False, True], ids=["json", "event-stream"])
def listing_upstream(request) -> Iterator[ServerThread]:
    server = ServerThread(_listing_upstream(event_stream=request.param)).start()
    yield server
    server.stop()


def _reply_payload(response: httpx2.Response) -> dict[str, Any]:
    if response.headers["content-type"].startswith("text/event-stream"):
        [data] = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
        return orjson.loads(data)
    return response.json()


@pytest.mark.parametrize(
    ("method", "request_id", "expected"),
    [
        ("tools/list", None, ["search"]),
        ("resources/list", None, ["docs://a"]),
        ("prompts/list", None, ["summarize"]),
        ("tools/list", 0, ["search"]),
        ("tools/list", "", ["search"]),
    ],
    ids=repr,
)
def test_a_listing_is_trimmed_whatever_its_request_id(
    gateway, tenant, listing_upstream, method, request_id, expected
):
    target_create(tenant=tenant, slug="lists", upstream_url=f"{listing_upstream.url}/mcp")
    issued = issue_credential(
        tenant, None, "POST /tools/search", "POST /resources/docs://*", "POST /prompts/summarize"
    )
    issued.credential.targets.set([tenant.targets.get(slug="lists")])
    # A raw body: an SDK would never send "id": null, an agent may.
    body = (
        b'{"jsonrpc": "2.0", "id": ' + orjson.dumps(request_id) + b', "method": "' + method.encode() + b'"}'
    )
    response = httpx2.post(
        gateway.proxy_url("lists"),
        content=body,
        headers={
            "Authorization": f"Bearer {issued.token}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        },
        timeout=10,
    )
    assert response.status_code == 200
    payload = _reply_payload(response)
    assert payload["id"] == request_id
    key, _ = LISTED[method]
    field = "uri" if key == "resources" else "name"
    assert [item[field] for item in payload["result"][key]] == expected
