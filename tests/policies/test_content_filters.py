"""Response filters: JSON paths destroy their matches in every MCP result shape, nothing else changes."""

from __future__ import annotations

import copy
import random
import time
import warnings

import orjson
import pytest
from jsonpath_ng.ext.parser import parse as jsonpath_ng_parse

from policies.content import (
    FilterCount,
    UnfilterableContent,
    apply_filters,
    apply_to_message_bytes,
    compile_filter,
    compile_json_path,
    filter_message_bytes,
)

PAYLOAD = {
    "id": "int-123",
    "owner": {"email": "a@b.example", "id": "usr-9"},
    "items": [
        {"id": 1, "name": "one", "internal": {"shard": 4}, "tags": ["a"]},
        {"id": 2, "name": "two", "internal": {"shard": 5}},
        {"id": 3, "name": "three", "kind": "secret"},
    ],
}


def _filter(*paths: str, mode: str = "enforce", filter_id: int = 1):
    return compile_filter(filter_id=filter_id, paths=paths, mode=mode)


def _tool_result(payload=PAYLOAD, *, text: str | None = None) -> dict:
    return {
        "content": [{"type": "text", "text": orjson.dumps(payload).decode() if text is None else text}],
        "structuredContent": copy.deepcopy(payload),
        "isError": False,
    }


# --- compiling paths -----------------------------------------------------------------------------


def test_invalid_path_is_refused_with_the_parsers_message():
    with pytest.raises(ValueError, match=r"invalid JSON path '\$\.items\[': Parse error"):
        compile_json_path("$.items[")


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("items.id", "must start at the document root"),
        ("$.items[?(@.name =~ 'o.*')]", "regular-expression conditions"),
        ("$.items[?(@..id)]", "may not use '..'"),
        ("$.items[?(@.id == $.id)]", "not '\\$'"),
        ("$.items.`len`", "`Len`, which does not select values that can be removed"),
        ("$.id | $.owner", "'\\|', which does not select"),
        ("$." + "a." * 600 + "b", "longer than 1024 characters"),
    ],
)
def test_paths_that_cannot_be_applied_safely_are_refused_when_saved(expression, reason):
    with pytest.raises(ValueError, match=reason):
        compile_json_path(expression)


def test_a_path_is_parsed_once():
    assert compile_json_path("$..id") is compile_json_path("$..id")


def test_a_filter_refuses_an_unknown_mode_and_an_empty_path_list():
    with pytest.raises(ValueError, match="'enforce' or 'monitor'"):
        compile_filter(filter_id=1, paths=["$.id"], mode="audit")
    with pytest.raises(ValueError, match="at least one JSON path"):
        compile_filter(filter_id=1, paths=[])


def test_a_filter_keeps_its_route_glob_as_data():
    compiled = compile_filter(filter_id=7, paths=["$.id"], route="POST /tools/search")
    assert (compiled.id, compiled.route, compiled.mode) == (7, "POST /tools/search", "enforce")
    assert [str(path) for path in compiled.paths] == ["$.id"]


VARIED = {
    "items": [
        {"id": 1, "name": "one", "flag": True, "x": None, "n": {"a": [1, 2]}},
        {"id": 2, "name": "two", "flag": 1, "x": 0, "n": {"a": [1, 2]}, "m": {"a": [1, 2]}},
        {"id": "2", "name": "three", "flag": False, "m": 2.5},
        {"id": 2.0, "flag": "true", "x": [None], "n": 3, "m": 3},
        [1, {"id": 5}],
        "scalar",
        None,
    ],
    "values": [True, 1, 1.0, "1", None, False, 0, [], {}],
}


def _jsonpath_ng_locations(expression: str, document) -> set[tuple[int, object]]:
    found = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # `&` in a condition
        tree = jsonpath_ng_parse(expression)
    for datum in tree.find(document):
        if datum.context is None:  # the document itself
            found.add((id(None), None))
            continue
        path = datum.path
        container = datum.context.value
        key = path.fields[0] if hasattr(path, "fields") else path.indices[0] % len(container)
        found.add((id(container), key))
    return found


# Paths whose selection is checked against jsonpath-ng's own (test_content_filter_stacks.py reuses them).
SELECTED_PATHS = [
    "$..id",
    "$.owner",
    "$.owner.email",
    "$.items[*].internal",
    "$.items[-1]",
    "$.items[0,2]",
    "$.items[1:3]",
    "$.items[::2]",
    "$.items[::-1]",
    "$.*",
    "$.items[*].*",
    "$..items[*].id",
    "$..internal.shard",
    "$..*",
    "$.items[?(@.id > 1)]",
    "$.items[?(@.tags)]",
    "$.items[?(@.kind == 'secret')].name",
    "$.items[?(@.id > 1 && @.internal)]",
    "$['id','owner']",
    "$.missing.field",
    "$..items..id",
    "$..*..id",
    "$.items[?(@.id == 2)]",
    "$.items[?(@.id != 2)]",
    "$.items[?(@.id >= 2)]",
    "$.items[?(@.id < 2)]",
    "$.items[?(@.id == '2')]",
    "$.items[?(!@.x)]",
    "$.items[?(@.x == null)]",
    "$.items[?(@.x != null)]",
    "$.items[?(@.flag == true)]",
    "$.items[?(@.flag != false)]",
    "$.items[?(@.name > 'one')]",
    "$.items[?(@.name <= 'one')]",
    "$.items[?(@.n == @.m)]",
    "$.items[?(@.n != @.m)]",
    "$.items[?(@.m <= @.n)]",
    "$.items[?(@.id == 1 || @.m > 2)]",
    "$.items[?(@.id == 2 && @.x == 0)]",
    "$.items[?(@.id > 1 & @.flag)]",
    "$.items[?(@.n.a[1] == 2)]",
    "$.items[?(@.n.a[?(@ == 2)])]",
    "$..*[?(@.id)]",
    "$.values[?(@ == 1)]",
    "$.values[?(@ == true)]",
    "$.values[?(@ == null)]",
    "$.values[?(@ >= 1)]",
    "$.values[?(@ < '2')]",
    "$..[?(@.a)]",
    "$..@",
    "$..`this`.id",
    "$.items.`this`[0]",
]


@pytest.mark.parametrize("expression", SELECTED_PATHS)
@pytest.mark.parametrize("data", [PAYLOAD, VARIED], ids=["payload", "varied"])
def test_paths_select_what_jsonpath_ng_selects(expression, data):
    document = copy.deepcopy(data)
    ours = {(id(container), key) for container, key, _ in compile_json_path(expression).locate(document)}
    assert ours == _jsonpath_ng_locations(expression, document)


def _random_document(rng: random.Random, depth: int = 0):
    if depth > 3 or rng.random() < 0.3:
        return rng.choice([0, 1, 2, 2.0, "1", "a", "b", True, False, None])
    if rng.random() < 0.5:
        return [_random_document(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice("abxy") + rng.choice(["", "d"]): _random_document(rng, depth + 1) for _ in range(4)}


@pytest.mark.parametrize(
    "expression",
    [
        "$..a",
        "$..ad",
        "$.*.a",
        "$..[1]",
        "$..[-1:]",
        "$..a..b",
        "$..*",
        "$..@",
        "$..[?(@.a)]",
        "$..[?(@.a == 1)]",
        "$..[?(@.b != 'a')]",
        "$..[?(@ > 1)]",
        "$..[?(@.a == @.b)]",
        "$..[?(!@.x || @.y <= 1)]",
        "$.a[*].b[0]",
    ],
)
def test_paths_select_what_jsonpath_ng_selects_on_random_documents(expression):
    rng = random.Random(expression)
    for _ in range(150):
        document = {"a": _random_document(rng), "b": _random_document(rng), "x": _random_document(rng)}
        ours = {(id(container), key) for container, key, _ in compile_json_path(expression).locate(document)}
        assert ours == _jsonpath_ng_locations(expression, document), document


# --- tools/call ------------------------------------------------------------------------------------


def test_tenant_and_credential_filters_leave_neither_field_in_structured_content_nor_json_text():
    result = _tool_result()
    outcome = apply_filters(
        "tools/call", result, [_filter("$..id", filter_id=1), _filter("$.owner", filter_id=2)]
    )
    assert outcome.changed
    for document in (result["structuredContent"], orjson.loads(result["content"][0]["text"])):
        assert "owner" not in document
        assert "id" not in orjson.dumps(document).decode()
        assert [item["name"] for item in document["items"]] == ["one", "two", "three"]
    # each form: 1 + 1 (owner) + 3 (items) ids, then the owner object
    assert outcome.counts == (FilterCount(1, "enforce", 10), FilterCount(2, "enforce", 2))


def _filtered_separately(result: dict, filters: list) -> tuple[dict, tuple]:
    """What the filters give when the structured content and the text are not known to be twins."""
    structured = {"structuredContent": copy.deepcopy(result["structuredContent"])}
    text = {"content": copy.deepcopy(result["content"])}
    first = apply_filters("tools/call", structured, filters)
    second = apply_filters("tools/call", text, filters)
    counts = tuple(
        FilterCount(a.filter_id, a.mode, a.removed + b.removed)
        for a, b in zip(first.counts, second.counts, strict=True)
    )
    return {**structured, **text}, counts


@pytest.mark.parametrize(
    "text",
    [
        None,  # the compact JSON of the structured content
        orjson.dumps(PAYLOAD, option=orjson.OPT_INDENT_2).decode(),  # as an MCP server writes it
        orjson.dumps({**PAYLOAD, "id": 1.0}).decode(),  # 1.0 is not 1: another document
        orjson.dumps(dict(reversed(PAYLOAD.items()))).decode(),  # another key order: another text
    ],
)
def test_text_holding_the_structured_content_gets_what_filtering_it_separately_gives(text):
    # The text twin of the structured content is filtered once, with the very same outcome.
    filters = [
        _filter("$..id", filter_id=1),
        _filter("$.owner", filter_id=2),
        _filter("$.items[0]", filter_id=3),
    ]
    filters.append(_filter("$..name", mode="monitor", filter_id=4))
    result = _tool_result(text=text)
    expected, expected_counts = _filtered_separately(result, filters)

    outcome = apply_filters("tools/call", result, filters)

    for part in ("structuredContent", "content"):
        assert orjson.dumps(result[part]) == orjson.dumps(expected[part])
    assert outcome.counts == expected_counts


def test_filtered_json_text_is_written_back_compactly():
    result = _tool_result(text='{\n  "id": "int-123",\n  "name": "x"\n}')
    apply_filters("tools/call", result, [_filter("$.id")])
    assert result["content"][0]["text"] == '{"name":"x"}'


def test_text_that_no_path_matches_keeps_its_exact_original_form():
    original = '{\n  "name": "x"\n}'
    result = {"content": [{"type": "text", "text": original}], "structuredContent": {"name": "x"}}
    outcome = apply_filters("tools/call", result, [_filter("$.id")])
    assert result["content"][0]["text"] is original
    assert not outcome.changed


@pytest.mark.parametrize("text", ["plain words", "[1] see the footnote", "{name}", "42", '"a string"', ""])
def test_text_that_is_not_a_json_object_or_array_is_left_alone(text):
    result = {"content": [{"type": "text", "text": text}]}
    outcome = apply_filters("tools/call", result, [_filter("$..id", "$")])
    assert result["content"][0]["text"] is text
    assert not outcome.changed


def test_json_text_behind_any_amount_of_whitespace_is_filtered():
    result = {"content": [{"type": "text", "text": " \r\n\t" * 10_000 + '{"id": 1, "v": 2}'}]}
    apply_filters("tools/call", result, [_filter("$.id")])
    assert result["content"][0]["text"] == '{"v":2}'


def test_json_text_with_nan_is_filtered_as_a_lenient_agent_would_read_it():
    result = {"content": [{"type": "text", "text": '{"id": "int-123", "score": NaN}'}]}
    apply_filters("tools/call", result, [_filter("$.id")])
    assert result["content"][0]["text"] == '{"score":null}'


def test_non_text_content_items_are_untouched():
    image = {"type": "image", "data": '{"id": 1}', "mimeType": "image/png"}
    result = {"content": [image]}
    assert not apply_filters("tools/call", result, [_filter("$..id")]).changed
    assert result["content"] == [{"type": "image", "data": '{"id": 1}', "mimeType": "image/png"}]


def test_an_embedded_resource_in_a_tool_result_is_filtered_like_resource_contents():
    resource = {"uri": "db://row/1", "mimeType": "application/json", "text": '{"id": 1, "v": 2}'}
    result = {"content": [{"type": "resource", "resource": resource}]}
    apply_filters("tools/call", result, [_filter("$.id")])
    assert resource["text"] == '{"v":2}'


def test_tool_call_paths_are_relative_to_the_structured_content():
    result = _tool_result()
    apply_filters("tools/call", result, [_filter("$.isError", "$.content")])
    assert result["isError"] is False and result["content"]


def test_array_elements_are_removed_without_shifting_onto_the_wrong_ones():
    result = {"structuredContent": {"items": ["a", "b", "c", "d", "e"]}}
    outcome = apply_filters("tools/call", result, [_filter("$.items[0,2]", "$.items[-1]")])
    assert result["structuredContent"]["items"] == ["b", "d"]
    assert outcome.counts[0].removed == 3


def test_a_wildcard_over_an_array_empties_it():
    result = {"structuredContent": {"items": [1, 2, 3]}}
    apply_filters("tools/call", result, [_filter("$.items[*]")])
    assert result["structuredContent"] == {"items": []}


def test_the_root_path_empties_the_document():
    result = _tool_result()
    apply_filters("tools/call", result, [_filter("$")])
    assert result["structuredContent"] == {}
    assert result["content"][0]["text"] == "{}"


def test_a_condition_removes_only_the_items_it_holds_for():
    result = _tool_result()
    apply_filters("tools/call", result, [_filter("$.items[?(@.kind == 'secret')]")])
    assert [item["name"] for item in result["structuredContent"]["items"]] == ["one", "two"]


def test_a_condition_comparing_unlike_types_matches_nothing_instead_of_failing():
    result = {"structuredContent": {"items": [{"id": "x"}, {"id": [1]}, {"id": 5}]}}
    apply_filters("tools/call", result, [_filter("$.items[?(@.id > 1)]")])
    assert result["structuredContent"]["items"] == [{"id": "x"}, {"id": [1]}]


def test_a_path_that_matches_nothing_is_not_an_error():
    result = _tool_result()
    before = copy.deepcopy(result)
    outcome = apply_filters("tools/call", result, [_filter("$.nothing.here", "$..absent")])
    assert result == before
    assert not outcome.changed and outcome.counts == (FilterCount(1, "enforce", 0),)


def test_filters_stack_in_the_given_order():
    result = {"structuredContent": {"owner": {"email": "a@b.example"}}}
    outcome = apply_filters(
        "tools/call", result, [_filter("$.owner", filter_id=1), _filter("$.owner.email", filter_id=2)]
    )
    assert [count.removed for count in outcome.counts] == [1, 0]


def test_no_filters_change_nothing_and_report_nothing():
    result = _tool_result()
    outcome = apply_filters("tools/call", result, [])
    assert not outcome.changed and outcome.counts == ()


# --- monitor mode ------------------------------------------------------------------------------


def test_a_monitor_filter_changes_nothing_and_counts_what_it_would_remove():
    result = _tool_result()
    before = copy.deepcopy(result)
    outcome = apply_filters("tools/call", result, [_filter("$..id", mode="monitor", filter_id=4)])
    assert result == before
    assert not outcome.changed
    assert outcome.counts == (FilterCount(4, "monitor", 10),)
    assert outcome.as_audit() == [{"filter": 4, "mode": "monitor", "removed": 10}]


def test_a_monitor_filter_counts_a_location_once_across_its_paths():
    result = {"structuredContent": {"owner": {"email": "x"}}}
    outcome = apply_filters("tools/call", result, [_filter("$.owner", "$['owner']", mode="monitor")])
    assert outcome.counts[0].removed == 1


def test_a_monitor_filter_sees_what_the_enforcing_filters_before_it_left():
    result = {"structuredContent": {"id": 1, "owner": {"id": 2}}}
    outcome = apply_filters(
        "tools/call",
        result,
        [_filter("$.owner", filter_id=1), _filter("$..id", mode="monitor", filter_id=2)],
    )
    assert result["structuredContent"] == {"id": 1}
    assert [count.removed for count in outcome.counts] == [1, 1]


# --- resources/read, prompts/get and other methods -----------------------------------------------


def test_resource_contents_are_filtered_as_items_and_as_json_text():
    result = {
        "contents": [
            {"uri": "db://a", "mimeType": "application/json", "text": '{"id": 1, "v": 1}', "etag": "e"},
            {"uri": "file://b", "mimeType": "text/plain", "text": "id: 2"},
            {"uri": "file://c", "blob": "aWQ="},
        ]
    }
    outcome = apply_filters("resources/read", result, [_filter("$.id", "$.etag")])
    assert result["contents"][0] == {"uri": "db://a", "mimeType": "application/json", "text": '{"v":1}'}
    assert result["contents"][1]["text"] == "id: 2"
    assert outcome.counts[0].removed == 2


def test_prompt_messages_are_filtered_as_objects_and_as_json_text():
    result = {
        "description": "d",
        "messages": [
            {"role": "user", "content": {"type": "text", "text": '{"id": 1, "q": "?"}'}, "id": "m1"},
            {"role": "assistant", "content": [{"type": "text", "text": '[{"id": 2}]'}]},
        ],
    }
    apply_filters("prompts/get", result, [_filter("$..id", "$[*].id")])
    assert result["messages"][0] == {"role": "user", "content": {"type": "text", "text": '{"q":"?"}'}}
    assert result["messages"][1]["content"][0]["text"] == "[{}]"
    assert result["description"] == "d"


@pytest.mark.parametrize("method", ["", "custom/search", "tools/list"])
def test_other_methods_and_non_mcp_bodies_are_filtered_as_a_whole(method):
    result = {"id": 1, "rows": [{"id": 2, "name": "n"}]}
    apply_filters(method, result, [_filter("$..id")])
    assert result == {"rows": [{"name": "n"}]}


def test_an_unusual_result_shape_never_breaks_the_filter():
    for method, result in [
        ("tools/call", {"content": "x", "structuredContent": 5}),
        ("resources/read", {"contents": {"id": 1}}),
        ("prompts/get", {"messages": [1, None, {"content": 3}]}),
        ("tools/call", [{"id": 1}]),
        ("tools/call", None),
    ]:
        apply_filters(method, result, [_filter("$..id")])


# --- message bodies ------------------------------------------------------------------------------


def _response(message_id, result) -> dict:
    return {"jsonrpc": "2.0", "id": message_id, "result": result}


def test_an_unchanged_body_is_forwarded_as_the_very_same_bytes():
    body = orjson.dumps(_response(1, _tool_result()))
    assert apply_to_message_bytes(body, {1: "tools/call"}, [_filter("$.absent")]) is body
    assert apply_to_message_bytes(body, {1: "tools/call"}, []) is body


def test_a_monitor_only_body_is_the_same_bytes_with_its_counts():
    body = orjson.dumps(_response(1, _tool_result()))
    forwarded, outcome = filter_message_bytes(body, {1: "tools/call"}, [_filter("$.owner", mode="monitor")])
    assert forwarded is body
    assert outcome.counts == (FilterCount(1, "monitor", 2),)


def test_a_batch_matches_each_result_to_its_request_method_by_id():
    body = orjson.dumps(
        [
            _response("a", _tool_result()),
            _response(2, {"contents": [{"uri": "u", "text": '{"owner": 1}'}]}),
            {"jsonrpc": "2.0", "id": 3, "error": {"code": -1, "message": "m", "data": {"owner": 1}}},
            {"jsonrpc": "2.0", "method": "notifications/message", "params": {"owner": 1}},
        ]
    )
    forwarded, outcome = filter_message_bytes(
        body, {"a": "tools/call", 2: "resources/read", 3: "tools/call"}, [_filter("$.owner")]
    )
    messages = orjson.loads(forwarded)
    assert "owner" not in messages[0]["result"]["structuredContent"]
    assert messages[1]["result"]["contents"][0]["text"] == "{}"
    assert messages[2]["error"]["data"] == {"owner": 1}
    assert messages[3]["params"] == {"owner": 1}
    assert outcome.counts[0].removed == 3


def test_a_single_message_stays_a_single_message():
    body = orjson.dumps(_response(1, {"owner": 1, "v": 2}))
    assert orjson.loads(apply_to_message_bytes(body, {1: "custom/x"}, [_filter("$.owner")])) == _response(
        1, {"v": 2}
    )


def test_a_result_whose_request_is_unknown_is_filtered_as_a_whole():
    body = orjson.dumps(_response(9, {"structuredContent": {"owner": 1}, "owner": 2}))
    forwarded = apply_to_message_bytes(body, {}, [_filter("$.owner", "$..owner")])
    assert orjson.loads(forwarded)["result"] == {"structuredContent": {}}


def test_an_id_that_is_not_a_string_or_number_is_filtered_as_a_whole():
    body = orjson.dumps({"jsonrpc": "2.0", "id": [1], "result": {"owner": 1}})
    assert orjson.loads(apply_to_message_bytes(body, {1: "tools/call"}, [_filter("$.owner")]))["result"] == {}


@pytest.mark.parametrize("body", [b"not json", b'{"result": NaN}', b"\xff", b""])
def test_a_body_the_gateway_cannot_read_is_refused_rather_than_forwarded_unfiltered(body):
    with pytest.raises(UnfilterableContent, match="not JSON"):
        apply_to_message_bytes(body, {}, [_filter("$.owner")])


def test_a_body_too_deep_to_write_back_after_filtering_is_refused():
    # orjson reads 1024 levels but writes at most 254
    body = b'{"jsonrpc":"2.0","id":1,"result":{"owner":1,"deep":' + _deep_json(300) + b"}}"
    with pytest.raises(UnfilterableContent, match="too deeply"):
        apply_to_message_bytes(body, {1: "custom/x"}, [_filter("$.owner")])


def _deep_json(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


# --- hostile input -----------------------------------------------------------------------------


def test_text_nested_too_deeply_to_parse_is_refused_rather_than_left_unfiltered():
    result = {"content": [{"type": "text", "text": "[" * 1_000_000}]}
    started = time.perf_counter()
    with pytest.raises(UnfilterableContent, match="too deep or too large"):
        apply_filters("tools/call", result, [_filter("$..id")])
    assert time.perf_counter() - started < 1.0


def test_json_text_with_an_integer_no_parser_here_reads_is_refused_rather_than_left_unfiltered():
    result = {"content": [{"type": "text", "text": '{"id": "int-123", "n": 1' + "0" * 5000 + "}"}]}
    with pytest.raises(UnfilterableContent, match="too deep or too large"):
        apply_filters("tools/call", result, [_filter("$..id")])


def test_deep_json_text_past_orjsons_writer_is_still_written_back():
    text = '{"id":1,"d":' * 500 + "0" + "}" * 500
    result = {"content": [{"type": "text", "text": text}]}
    apply_filters("tools/call", result, [_filter("$..id")])
    assert '"id"' not in result["content"][0]["text"]
    assert result["content"][0]["text"].count('"d"') == 500


@pytest.mark.parametrize(
    "text",
    [
        '{"a":"' + "\\u00e9" * 200_000 + '"',  # unterminated string: 1.2 MB
        "{" + " " * 1_000_000,
        " \n" * 500_000,
        '[{"a":' * 100_000,
        "[" + "1," * 500_000,
    ],
)
def test_a_hostile_megabyte_of_text_is_handled_fast(text):
    result = {"content": [{"type": "text", "text": text}]}
    started = time.perf_counter()
    try:
        apply_filters("tools/call", result, [_filter("$..id", "$..*[?(@.x)]")])
    except UnfilterableContent:
        pass
    assert time.perf_counter() - started < 1.0


def test_chained_descents_stay_linear_on_hostile_nesting():
    document: dict = {"leaf": 1}
    for _ in range(900):
        document = {"a": document, "b": [1, 2]}
    result = {"structuredContent": document}
    started = time.perf_counter()
    outcome = apply_filters(
        "tools/call", result, [_filter("$..a..a..a..b", mode="monitor"), _filter("$..*..*..*")]
    )
    assert time.perf_counter() - started < 1.0
    # the third `a` down holds levels 3..899, each with a `b`
    assert outcome.counts[0].removed == 897
    # everything three levels down or deeper is gone
    assert result["structuredContent"] == {"a": {"a": {}, "b": []}, "b": [1, 2]}


def test_a_wide_megabyte_document_is_filtered_in_linear_time():
    items = [{"id": i, "name": "n", "internal": {"k": i}} for i in range(30_000)]
    result = {"structuredContent": {"items": items}}
    assert len(orjson.dumps(result)) > 1_000_000
    started = time.perf_counter()
    outcome = apply_filters("tools/call", result, [_filter("$..id", "$.items[*].internal", "$..*[?(@.k)]")])
    # linear: about 0.4 s on a busy 2-core machine; one quadratic step would take hours
    assert time.perf_counter() - started < 5.0
    assert outcome.counts[0].removed == 60_000
    assert result["structuredContent"]["items"][0] == {"name": "n"}
