"""The operator's commands: create_meter, rollup_usage, and the meters check_access shows."""

from __future__ import annotations

import json
import os
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from metering.models import Meter, UsageRollup
from tests.conftest import issue_credential
from tests.metering.conftest import post_call

TOKENS = "$.result.structuredContent.usage.total_tokens"


def command_json(*args: str) -> dict:
    out = StringIO()
    call_command(*args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_create_meter_scopes_to_the_credential_else_the_target_else_the_tenant(tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/*")
    common = ("--tenant", "acme", "--kind", "request_count", "--window", "minute", "--limit", "60")
    on_credential = command_json(
        "create_meter", *common, "--credential", str(issued.credential.pk), "--route", "POST /tools/*"
    )
    on_target = command_json(
        "create_meter",
        "--tenant",
        "acme",
        "--target",
        "docs",
        "--kind",
        "response_value",
        "--window",
        "month",
        "--limit",
        "5000000",
        "--value-path",
        TOKENS,
        "--value-path",
        "$.result._meta.cost",
        "--fail-mode",
        "closed",
    )
    on_tenant = command_json("create_meter", *common)
    assert on_credential["scope"] == "credential" and on_credential["credential_id"] == issued.credential.pk
    assert on_credential["route"] == "POST /tools/*" and on_credential["limit"] == 60
    assert on_target == {
        "id": on_target["id"],
        "name": f"m{on_target['id']}",
        "tenant": "acme",
        "scope": "target",
        "target": "docs",
        "credential_id": None,
        "kind": "response_value",
        "window": "month",
        "limit": 5000000,
        "route": "",
        "value_paths": [TOKENS, "$.result._meta.cost"],
        "fail_mode": "closed",
    }
    assert on_tenant["scope"] == "tenant"
    assert Meter.objects.count() == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--value-path", "$.result.usage["), "Invalid JSON path '$.result.usage['"),
        (("--route", "tools/search"), "A route must be 'METHOD /path-glob'"),
        ((), "A response_value meter needs at least one JSON path"),
    ],
)
def test_create_meter_refuses_bad_input_with_a_clear_message(tenant, args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command(
            "create_meter",
            "--tenant",
            "acme",
            "--kind",
            "response_value",
            "--window",
            "day",
            "--limit",
            "10",
            *args,
        )


def test_rollup_usage_command_rolls_up_and_reports(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    post_call(gateway.proxy_url("docs"), issued.token)
    gateway.flush_audit()
    report = command_json("rollup_usage", "--since", "2026-01-01")
    assert report["rows"] >= 2 and report["last_event_id"] > 0
    assert (
        UsageRollup.objects.filter(period="hour", credential=issued.credential, tool="search").get().calls
        == 1
    )


def test_check_access_shows_the_meters_that_would_apply_and_their_use(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    counting = Meter.objects.create(
        tenant=tenant,
        credential=issued.credential,
        kind="request_count",
        window="minute",
        limit=5,
        route="POST /tools/search",
    )
    Meter.objects.create(
        tenant=tenant,
        credential=issued.credential,
        kind="request_count",
        window="day",
        limit=9,
        route="POST /prompts/*",
    )
    tokens = Meter.objects.create(
        tenant=tenant, target=target, kind="response_value", window="day", limit=1000, value_paths=[TOKENS]
    )
    for _ in range(2):
        post_call(gateway.proxy_url("docs"), issued.token)

    report = command_json("check_access", "--credential", str(issued.credential.pk), "POST /tools/search")
    shown = {meter["id"]: meter for meter in report["meters"]}
    assert set(shown) == {counting.pk, tokens.pk}  # the prompts meter does not count this route
    if os.environ.get("REDIS_URL"):
        assert (shown[counting.pk]["used"], shown[tokens.pk]["used"]) == (2, 800)
        assert shown[counting.pk]["resets_at"] is not None
    else:  # the counters live inside the gateway process: a command cannot read them, and says so
        assert shown[counting.pk]["used"] is None and "embedded default" in shown[counting.pk]["note"]

    text = StringIO()
    call_command("check_access", "--credential", str(issued.credential.pk), "POST /tools/search", stdout=text)
    assert (
        f"meter m{counting.pk} (credential {issued.credential.pk}, calls matching POST /tools/search"
        in text.getvalue()
    )
