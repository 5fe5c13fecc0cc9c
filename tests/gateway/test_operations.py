"""What an operator runs by hand: ``python3 dev.py demo``, stopped with a signal and run again."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from audit.models import AuditEvent
from gateway.models import Credential
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def embedded_default_env(tmp_path: Path) -> dict[str, str]:
    """A fresh clone's environment: no keys, no Redis, no DEBUG; only the database moved to tmp."""
    dropped = {
        "DJANGO_SETTINGS_MODULE",
        "SECRET_KEY",
        "DEBUG",
        "ALLOWED_HOSTS",
        "REDIS_URL",
        "CELERY_BROKER_URL",
    }
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("GATEWAY_")}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        GATEWAY_AUDIT_WAL_DIR=str(tmp_path / "audit-wal"),
        LOG_LEVEL="WARNING",
    )
    return env


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def port_answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout} s")
        time.sleep(0.1)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_demo_stops_its_gateway_and_its_upstream(tmp_path, signum):
    # given: python3 dev.py demo, serving on free ports
    port, upstream_port = free_port(), free_port()
    demo = subprocess.Popen(
        [sys.executable, "dev.py", "demo", "--port", str(port), "--upstream-port", str(upstream_port)],
        cwd=ROOT,
        env=embedded_default_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # so the test can clean up whatever is left
    )
    try:
        wait_until(lambda: port_answers(port) and port_answers(upstream_port), 60, "the demo did not serve")
        children = descendants(demo.pid)
        assert len(children) >= 2  # manage.py demo (the gateway server) and the demo MCP server
        # when
        demo.send_signal(signum)
        # then
        assert demo.wait(20) is not None
        wait_until(lambda: not any(alive(pid) for pid in children), 10, "a child outlived the demo")
        assert not port_answers(port) and not port_answers(upstream_port)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait(5)


def test_running_the_demo_again_keeps_the_audit_history_of_the_earlier_run(transactional_db, capsys):
    call_command("demo", no_serve=True)
    credential = Credential.objects.get(name="demo-agent")
    event = AuditEvent.objects.create(
        created_at=credential.created_at,
        request_id="r1",
        credential=credential,
        credential_name=credential.name,
        credential_prefix=credential.prefix,
        http_method="POST",
        path="/mcp/demo/",
        decision="allowed",
        status_code=200,
        latency_ms=1.0,
    )
    first_token = capsys.readouterr().out.split("Token     : ")[1].split()[0]

    call_command("demo", no_serve=True)

    second_token = capsys.readouterr().out.split("Token     : ")[1].split()[0]
    assert second_token != first_token  # a fresh token each run ...
    assert Credential.objects.get(pk=credential.pk).name == "demo-agent"  # ... on the same credential
    assert AuditEvent.objects.get(pk=event.pk).credential_id == credential.pk
    assert Credential.objects.get(pk=credential.pk).rules.count() == 3
