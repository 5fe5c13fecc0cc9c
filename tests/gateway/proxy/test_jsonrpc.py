"""Virtual routes: one rule set scopes REST-style and JSON-RPC MCP servers alike."""

import pytest

from gateway.proxy.errors import InvalidParams, InvalidRequest, ParseError
from gateway.proxy.jsonrpc import parse_body, route_for


@pytest.mark.parametrize(
    ("message", "route", "plumbing"),
    [
        ({"method": "tools/call", "params": {"name": "search"}}, "POST /tools/search", False),
        ({"method": "resources/read", "params": {"uri": "docs://a/b"}}, "POST /resources/docs://a/b", False),
        ({"method": "prompts/get", "params": {"name": "p"}}, "POST /prompts/p", False),
        ({"method": "completion/complete", "params": {}}, "POST /completion/complete", False),
        ({"method": "initialize", "params": {}}, "POST /initialize", True),
        ({"method": "notifications/initialized"}, "POST /notifications/initialized", True),
        ({"method": "tools/list"}, "POST /tools/list", True),
        ({"result": {}}, "POST /", True),
    ],
)
def test_messages_map_to_virtual_routes(message, route, plumbing):
    resolved = route_for({"jsonrpc": "2.0", "id": 1, **message})
    assert (str(resolved), resolved.plumbing) == (route, plumbing)


def test_tools_call_needs_a_tool_name():
    with pytest.raises(InvalidParams, match=r"params\.name"):
        route_for({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": 3}})


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{", ParseError),
        (b"[]", InvalidRequest),
        (b"[1]", InvalidRequest),
        (b'{"jsonrpc": "1.0", "method": "x"}', InvalidRequest),
        (b'{"jsonrpc": "2.0", "method": 5}', InvalidRequest),
        (b'{"jsonrpc": "2.0", "id": [1], "method": "x"}', InvalidRequest),
        (b'{"jsonrpc": "2.0", "id": 1}', InvalidRequest),
    ],
)
def test_bad_bodies_are_refused_with_the_right_jsonrpc_error(body, error):
    with pytest.raises(error):
        parse_body(body)


def test_a_batch_is_parsed_item_by_item():
    messages, is_batch = parse_body(
        b'[{"jsonrpc": "2.0", "id": 1, "method": "ping"}, {"jsonrpc": "2.0", "method": "x"}]'
    )
    assert is_batch and [m["method"] for m in messages] == ["ping", "x"]
