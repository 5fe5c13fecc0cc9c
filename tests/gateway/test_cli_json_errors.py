"""What a script sees when a command fails: with ``--json``, one JSON object on standard error and a
non-zero exit status, never a traceback. Run as real processes over the test database."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from gateway.models import Credential
from gateway.services import credential_create, target_create, tenant_create

pytestmark = pytest.mark.django_db(transaction=True)


def manage(line: str) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py line`` in a process of its own, on this test's (committed) database."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        url = f"sqlite:///{db['NAME']}"
    else:
        password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
        url = (
            f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "manage.py", *shlex.split(line)],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def json_error(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") <= 1, result.stderr
    return json.loads(result.stderr)


@pytest.fixture
def agent() -> Credential:
    docs = target_create(
        tenant=tenant_create(name="acme"), slug="docs", upstream_url="http://127.0.0.1:9/mcp"
    )
    return credential_create(
        tenant=docs.tenant, name="agent", targets=[docs], allow=[("POST", "/tools/search")]
    ).credential


def test_a_failed_command_with_json_prints_one_json_error_and_exits_1():
    result = manage("show_tenant nowhere --json")

    assert result.returncode == 1
    assert json_error(result) == {"error": "No tenant named 'nowhere'."}
    assert result.stdout == ""


def test_a_refused_value_is_a_json_error_naming_the_field(agent):
    result = manage("update_target docs --upstream http://169.254.169.254/latest/ --json")

    assert result.returncode == 1
    body = json_error(result)
    assert body["error"].startswith("upstream_url: ")
    assert list(body["fields"]) == ["upstream_url"]


def test_a_usage_error_with_json_is_json_too_and_exits_2():
    result = manage("list_targets --no-such-option --json")

    assert result.returncode == 2
    assert json_error(result) == {"error": "unrecognized arguments: --no-such-option"}


def test_without_json_an_error_stays_a_line_of_text():
    result = manage("show_tenant nowhere")

    assert result.returncode == 1
    assert result.stderr.strip() == "CommandError: No tenant named 'nowhere'."


def test_check_access_exits_0_when_allowed_and_3_when_denied_with_the_report_on_stdout(agent):
    allowed = manage(f"check_access --credential {agent.id} 'POST /tools/search' --json")
    denied = manage(f"check_access --credential {agent.id} 'POST /tools/search' 'POST /tools/drop' --json")

    assert (allowed.returncode, allowed.stderr) == (0, "")
    assert denied.returncode == 3
    decisions = json.loads(denied.stdout)["decisions"]
    assert [d["decision"] for d in decisions] == ["allowed", "denied"]
    assert json_error(denied) == {"error": "access denied: POST /tools/drop"}
