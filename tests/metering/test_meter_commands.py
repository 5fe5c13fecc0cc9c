"""The meter commands an operator runs while agents call: list_meters (with current use), show_meter,
update_meter and delete_meter, and what the proxy does after each."""

from __future__ import annotations

import json
import re

import pytest
from django.core.management.base import CommandError

from metering.models import Meter
from metering.services import meter_create
from tests.commands import run_command as run
from tests.conftest import issue_credential
from tests.metering.conftest import post_call


def run_json(line: str) -> dict:
    return json.loads(run(line, "--json"))


@pytest.fixture
def meter(tenant, target) -> Meter:
    return meter_create(tenant=tenant, target=target, kind="request_count", window="hour", limit=5)


def test_list_meters_shows_each_meter_with_its_current_use(gateway, redis_url, tenant, target, meter):
    issued = issue_credential(tenant, target, "POST /tools/search")
    for request_id in (1, 2):
        assert post_call(gateway.proxy_url("docs"), issued.token, request_id=request_id).status_code == 200

    data = run_json("list_meters --tenant acme")
    text = run("list_meters --target docs")

    [shown] = data["meters"]
    assert (shown["id"], shown["name"], shown["scope"], shown["target"]) == (
        meter.id,
        meter.name,
        "target",
        "docs",
    )
    assert (shown["limit"], shown["used"]) == (5, 2)
    assert shown["resets_at"] is not None
    assert f"meter {meter.name} (target {target.id}, calls, fails open): 2 of 5 per hour used" in text


def test_lowering_a_limit_with_update_meter_refuses_the_next_call(gateway, redis_url, tenant, target, meter):
    issued = issue_credential(tenant, target, "POST /tools/search")
    assert post_call(gateway.proxy_url("docs"), issued.token).status_code == 200

    data = run_json(f"update_meter {meter.name} --limit 1 --description 'tight budget'")

    assert (data["limit"], data["description"], data["window"]) == (1, "tight budget", "hour")
    assert post_call(gateway.proxy_url("docs"), issued.token, request_id=2).status_code == 429


def test_a_deleted_meter_no_longer_refuses_calls(gateway, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    zero = meter_create(
        tenant=tenant, credential=issued.credential, kind="request_count", window="minute", limit=0
    )
    assert post_call(gateway.proxy_url("docs"), issued.token).status_code == 429

    data = run_json(f"delete_meter {zero.id}")

    assert data["deleted"] is True and not Meter.objects.exists()
    assert post_call(gateway.proxy_url("docs"), issued.token, request_id=2).status_code == 200


def test_show_meter_finds_a_meter_by_id_or_name(tenant, target, meter):
    assert run_json(f"show_meter {meter.id}")["id"] == run_json(f"show_meter m{meter.id}")["id"] == meter.id


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("--route tools/search", "route: "),
        ("--limit 1.5", "limit: A request count limit must be a whole number."),
        ("", "Nothing to change: give at least one of --limit, --window"),
    ],
)
def test_update_meter_refuses_bad_input_and_changes_nothing(tenant, target, meter, args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        run(f"update_meter {meter.id} {args}")

    meter.refresh_from_db()
    assert (meter.limit, meter.route) == (5, "")


@pytest.mark.parametrize("command", ["show_meter", "update_meter --limit 1", "delete_meter"])
def test_an_unknown_meter_is_a_clear_error(tenant, command):
    with pytest.raises(CommandError, match="No meter with id 'm999'"):
        run(f"{command.split()[0]} m999 {' '.join(command.split()[1:])}")
