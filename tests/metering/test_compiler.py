"""Meters compile once: routes, JSON paths, counter keys; values are read as the issue says."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from redis.crc import key_slot

from gateway.proxy.jsonrpc import Route
from metering.call import MeteredCall, MeterUse, plan_call
from metering.compiler import MeterConfigError, parse_value_paths
from metering.headers import ratelimit_headers
from metering.limiter import Charge, MeterReading
from metering.redis_limiter import script_call
from metering.values import ValueCounter
from metering.windows import window_span
from tests.metering.conftest import make_meter

TOKENS = "$.result.structuredContent.usage.total_tokens"


def route(tool: str, request_id: int = 1) -> Route:
    return Route("POST", f"/tools/{tool}", jsonrpc_method="tools/call", name=tool, id=request_id, has_id=True)


def test_route_glob_counts_only_matching_calls_and_never_plumbing():
    tools = make_meter(route="POST /tools/*")
    search_only = make_meter(route="POST /tools/search")
    every_call = make_meter()
    plumbing = Route("POST", "/tools/list", plumbing=True, jsonrpc_method="tools/list")
    assert tools.counts(route("search")) and tools.counts(route("delete_all"))
    assert search_only.counts(route("search")) and not search_only.counts(route("delete_all"))
    assert not tools.counts(Route("POST", "/prompts/p"))
    assert every_call.counts(Route("GET", "/anything")) and not every_call.counts(plumbing)


def test_a_batch_is_counted_once_per_matching_call():
    meter = make_meter(route="POST /tools/search")
    [use] = plan_call((meter,), [route("search", 1), route("delete_all", 2), route("search", 3)])
    assert use.pre_charge() == Charge(meter=meter, amount=2.0, needs_room=True)


def test_invalid_json_path_is_rejected_with_the_parsers_message():
    with pytest.raises(MeterConfigError) as caught:
        parse_value_paths("response_value", ["$.result.usage["])
    assert "Invalid JSON path '$.result.usage['" in str(caught.value)
    assert "Parse error" in str(caught.value)


def test_value_paths_are_required_for_values_and_refused_for_counts():
    with pytest.raises(MeterConfigError):
        parse_value_paths("response_value", [])
    with pytest.raises(MeterConfigError):
        parse_value_paths("request_count", [TOKENS])


@pytest.mark.parametrize(
    "path",
    [
        TOKENS,
        "$.result.content[0].n",
        "$.result.content[-1].n",
        "result._meta.cost",
        "$['result']['_meta']['cost']",
    ],
)
def test_plain_key_paths_read_exactly_what_jsonpath_ng_reads(path):
    [compiled] = parse_value_paths("response_value", [path])
    document = {
        "result": {
            "structuredContent": {"usage": {"total_tokens": 400}},
            "content": [{"n": 1}, {"n": 2}],
            "_meta": {"cost": 0.25},
        }
    }
    assert compiled.keys is not None
    assert compiled.find(document) == [m.value for m in compiled.expression.find(document)]
    assert compiled.find({"result": []}) == [m.value for m in compiled.expression.find({"result": []})]


def test_general_paths_use_jsonpath_ng():
    [compiled] = parse_value_paths("response_value", ["$.result.content[*].tokens"])
    assert compiled.keys is None
    assert compiled.find({"result": {"content": [{"tokens": 3}, {"tokens": 4}]}}) == [3, 4]


def value_call(*paths: str, routes: tuple[Route, ...] = (route("search", 7),)) -> MeteredCall:
    meter = make_meter(kind="response_value", window="day", limit=1000, value_paths=list(paths))
    return MeteredCall(uses=(MeterUse(meter=meter, routes=routes),))


def response(request_id: int, result: dict) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "result": result})


def test_values_of_several_paths_are_summed_per_call():
    call = value_call(TOKENS, "$.result._meta.cost")
    counter = ValueCounter(call, whole_body=False)
    counter.observe(
        response(7, {"structuredContent": {"usage": {"total_tokens": 400}}, "_meta": {"cost": 2.5}})
    )
    [charge] = counter.take_charges()
    assert charge.amount == 402.5
    assert call.values == {TOKENS: 400, "$.result._meta.cost": 2.5}
    assert call.notes == []


def test_missing_and_non_numeric_values_count_zero_and_are_noted():
    call = value_call(TOKENS, "$.result._meta.cost")
    counter = ValueCounter(call, whole_body=False)
    counter.observe(response(7, {"_meta": {"cost": "12"}}))
    assert counter.take_charges() == ()
    name = call.uses[0].meter.name
    assert call.notes == [
        f"meter {name}: value path {TOKENS} missing in the response to id 7: counted 0",
        f'meter {name}: value path $.result._meta.cost is "12" in the response to id 7, '
        "not a non-negative number: counted 0",
    ]


def test_only_the_response_to_a_metered_call_counts():
    call = value_call(TOKENS, routes=(route("search", 7),))
    counter = ValueCounter(call, whole_body=False)
    tokens = {"structuredContent": {"usage": {"total_tokens": 400}}}
    counter.observe(orjson.dumps({"jsonrpc": "2.0", "method": "notifications/progress", "params": {}}))
    counter.observe(response(8, tokens))  # not a metered call of this request
    counter.observe(response(7, tokens))
    counter.observe(response(7, tokens))  # a repeated id is not counted twice
    assert [c.amount for c in counter.take_charges()] == [400]


def test_a_metered_call_without_a_response_is_noted():
    call = value_call(TOKENS)
    counter = ValueCounter(call, whole_body=False)
    counter.finish()
    assert call.notes == [f"meter {call.uses[0].meter.name}: no response to id 7 seen: counted 0"]


def test_every_key_of_a_call_sits_in_one_redis_cluster_slot():
    # given the meters a call can meet: its credential's, its target's and its tenant's, any window
    meters = [make_meter(tenant_id=42, window=window) for window in ("minute", "hour", "day", "month")]
    keys, _, _ = script_call(tuple(MeterUse(m, (route("x"),)).pre_charge() for m in meters), 1.79e9, "check")
    assert len(set(keys)) == 4
    assert len({key_slot(key.encode()) for key in keys}) == 1
    assert all("{t42}" in key for key in keys)


def test_calendar_windows_are_utc_days_and_months():
    moment = datetime(2028, 2, 29, 23, 30, tzinfo=UTC).timestamp() * 1000
    day, month = window_span("day", int(moment)), window_span("month", int(moment))
    assert (day.suffix, day.seconds) == ("d20280229", 86_400)
    assert day.end_ms == datetime(2028, 3, 1, tzinfo=UTC).timestamp() * 1000
    assert (month.suffix, month.seconds) == ("m202802", 29 * 86_400)


def test_ratelimit_fields_follow_the_ietf_draft_syntax():
    count = make_meter(limit=60)
    tokens = make_meter(kind="response_value", window="day", limit=1000.5, value_paths=[TOKENS])
    headers = ratelimit_headers(
        [
            MeterReading(meter=count, used=43, reset_ms=22_100, window_seconds=60),
            MeterReading(meter=tokens, used=1200, reset_ms=3_600_000, window_seconds=86_400),
        ]
    )
    assert headers["ratelimit-policy"] == f'"{count.name}";q=60;w=60, "{tokens.name}";q=1000;w=86400'
    assert headers["ratelimit"] == f'"{count.name}";r=17;t=23, "{tokens.name}";r=0;t=3600'
