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


@pytest.mark.parametrize(
    "uri",
    [
        "docs://public/../secret",
        "docs://public/./secret",
        "docs://public/%2e%2e/secret",
        "docs://public/%2E%2e/secret",
        "docs://public/%252e%252e/secret",
        "file:///srv/docs/..",
        "docs://public%2fsecret",
        "docs://public%5Csecret",
        "docs://public\\..\\secret",
        "docs://public/a\nb",
        "docs://public%252f..%252fsecret",  # separators encoded twice: an upstream decoding twice
        "docs://a%255cb",
        "docs://a%00b",
        "docs://a%2500b",
    ],
)
def test_a_resource_uri_the_upstream_could_resolve_elsewhere_is_refused(uri):
    # A rule allowing /resources/docs://public/** must not reach docs://secret through the upstream.
    message = {"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": uri}}
    with pytest.raises(InvalidParams, match="dot segment"):
        route_for(message)


@pytest.mark.parametrize(
    "uri", ["docs://public/a..b", "docs://public/.well-known/x", "docs://p/a?x=../y", "docs://p/100%25"]
)
def test_a_resource_uri_with_dots_inside_names_is_routed(uri):
    message = {"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": uri}}
    assert route_for(message).path == "/resources/" + uri


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
    parsed = parse_body(b'[{"jsonrpc": "2.0", "id": 1, "method": "ping"}, {"jsonrpc": "2.0", "method": "x"}]')
    assert parsed.is_batch and [m["method"] for m in parsed.messages] == ["ping", "x"]


def _call(extra: str = "", params: str = '{"name": "search", "arguments": {"query": "q"}}') -> bytes:
    return f'{{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {params}{extra}}}'.encode()


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "method": "ping"}', '"method"'),
        (_call(params='{"name": "search", "name": "delete_all"}'), '"name"'),
        (_call(params='{"name": "search", "arguments": {"q": 1, "q": 2}}'), '"q"'),
        (
            b'[{"jsonrpc": "2.0", "method": "ping"}, {"jsonrpc": "2.0", "id": 1, "id": 2, "method": "x"}]',
            '"id"',
        ),
    ],
)
def test_a_duplicate_key_at_any_depth_is_refused_naming_the_key(body, names):
    with pytest.raises(InvalidRequest, match=f"duplicate key {names}"):
        parse_body(body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "Method": "tools/call"}',
        _call(params='{"name": "search", "NAME": "delete_all"}'),
        _call(params='{"name": "search", "arguments": {"query": "a", "Query": "b"}}'),
        _call(params='{"name": "search", "arguments": {"k": "a", "\\u212a": "b"}}'),  # Kelvin sign folds to k
    ],
)
def test_two_keys_equal_under_unicode_case_folding_are_refused(body):
    with pytest.raises(InvalidRequest, match="differ only by case or Unicode folding"):
        parse_body(body)


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (b'{"jsonrpc": "2.0", "id": 1, "Method": "tools/call"}', "Method"),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "Params": {}}', "Params"),
        ('{"jsonrpc": "2.0", "id": 1, "method": "ping", "param\u017f": {}}'.encode(), "param\\\\u017f"),
        (b'{"JSONRPC": "2.0", "jsonrpc": "2.0", "method": "ping"}', "JSONRPC"),
        (_call(params='{"Name": "delete_all"}'), "Name"),
        (_call(params='{"name": "search", "Arguments": {}}'), "Arguments"),
        (_call(params='{"name": "search", "_META": {}}'), "_META"),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"URI": "x://a"}}', "URI"),
    ],
)
def test_a_key_that_only_folds_to_a_member_is_refused(body, key):
    with pytest.raises(InvalidRequest, match=key):
        parse_body(body)


def test_arguments_may_use_any_keys_that_do_not_collide():
    parsed = parse_body(
        _call(params='{"name": "search", "arguments": {"Name": "x", "URI": "y", "Method": 1}}')
    )
    assert parsed.messages[0]["params"]["arguments"] == {"Name": "x", "URI": "y", "Method": 1}


@pytest.mark.parametrize(
    "body",
    [
        _call(extra=', "x": NaN'),
        _call(extra=', "x": Infinity'),
        _call(extra=', "x": -Infinity'),
        _call(extra=', "x": 1e400'),
        _call(extra=', "x": "\\ud800"'),  # a lone surrogate
        _call(extra=', "x": "\xff"').replace(b"\xc3\xbf", b"\xff"),  # invalid UTF-8
        b"\xef\xbb\xbf" + _call(),  # a byte order mark
        _call(extra=", \"x\": 'single'"),
        _call(extra=", "),  # a trailing comma
    ],
)
def test_what_rfc_8259_does_not_allow_is_a_parse_error(body):
    with pytest.raises(ParseError):
        parse_body(body)


@pytest.mark.parametrize("number", ["18446744073709551616", "-9223372036854775809", "1" * 40])
def test_an_integer_that_would_not_re_serialise_exactly_is_refused(number):
    with pytest.raises(InvalidRequest, match="64 bits"):
        parse_body(_call(extra=f', "x": {number}'))


@pytest.mark.parametrize("depth", [300, 990, 1030])
def test_deep_nesting_is_refused_not_a_server_error(depth):
    with pytest.raises((InvalidRequest, ParseError), match=r"nested too deeply|depth"):
        parse_body(_call(params='{"name": "s", "arguments": {"a": ' + "[" * depth + "]" * depth + "}}"))


def test_the_canonical_body_is_what_was_parsed_and_a_batch_stays_a_batch():
    single = parse_body(b'{ "jsonrpc" : "2.0", "id": 1,\n "method": "ping", "x": 1.0e2 }')
    batch = parse_body(b'[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]')
    assert single.canonical == b'{"jsonrpc":"2.0","id":1,"method":"ping","x":100.0}'
    assert batch.canonical == b'[{"jsonrpc":"2.0","id":1,"method":"ping"}]'
