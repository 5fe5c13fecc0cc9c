"""``manage.py demo``: the gateway with a bundled demo MCP server, a demo tenant, target and agent.

Migrates the database, starts ``gateway.demo_upstream`` on a loopback port behind its own secret,
creates (or updates) the ``demo`` tenant, the ``demo`` target and the ``demo-agent`` credential (a
fresh token each run, by rotation: nothing is deleted, so earlier audit events keep their
credential), prints the proxy URL, the token and a client example, then serves the gateway.

SIGTERM, SIGINT or SIGHUP stops the server gracefully and then the demo upstream (terminated,
awaited, killed if it lingers), so no child outlives the command.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from gateway.models import Credential, Target, Tenant
from gateway.services import (
    allow_rule_create,
    credential_create,
    credential_rotate,
    target_create,
    target_set_upstream_auth,
    tenant_create,
)

DEMO_RULES = [
    ("POST", "/tools/search_docs", "search the demo documents"),
    ("POST", "/tools/current_time", "read the clock"),
    ("POST", "/resources/docs://*", "read demo documents"),
]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Command(BaseCommand):
    help = "Run the gateway with a bundled demo MCP server and print a ready-to-use token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--upstream-port", type=int, default=8765)
        parser.add_argument("--no-serve", action="store_true", help="Set up and print, but do not serve.")

    def handle(
        self, *args: Any, host: str, port: int, upstream_port: int, no_serve: bool, **options: Any
    ) -> None:
        upstream: subprocess.Popen[bytes] | None = None
        # uvicorn restores these handlers after its graceful shutdown and re-raises the signal: ours
        # turn it into SystemExit, so the ``finally`` below stops the upstream (atexit would not run).
        previous = {signum: signal.signal(signum, _exit_on_signal) for signum in STOP_SIGNALS}
        try:
            call_command("migrate", verbosity=0)
            upstream_secret = secrets.token_urlsafe(24)
            upstream_url = f"http://127.0.0.1:{upstream_port}/mcp"
            if not no_serve:
                upstream = _start_upstream(upstream_port, upstream_secret)
            token = self._configure(upstream_url, upstream_secret)
            self.stdout.write(_banner(f"http://{host}:{port}/mcp/demo/", token))
            if not no_serve:
                call_command("serve", host=host, port=port)
        finally:
            if upstream is not None:
                _stop(upstream)
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _configure(self, upstream_url: str, upstream_secret: str) -> str:
        tenant = Tenant.objects.filter(name="demo").first() or tenant_create(name="demo")
        target = Target.objects.filter(slug="demo").first()
        if target is None:
            target = target_create(
                tenant=tenant,
                slug="demo",
                upstream_url=upstream_url,
                auth_type="bearer",
                auth_secret=upstream_secret,
            )
        else:
            target.upstream_url = upstream_url
            target_set_upstream_auth(target=target, auth_type="bearer", secret=upstream_secret)
        return _demo_agent_token(tenant, target)


def _demo_agent_token(tenant: Tenant, target: Target) -> str:
    """A fresh token for ``demo-agent`` with the demo's rules, keeping the credential if it exists.

    Never deleted: audit events of earlier runs refer to it. A revoked or expired one is reinstated.
    """
    credential = Credential.objects.filter(tenant=tenant, name="demo-agent").first()
    if credential is None:
        credential = credential_create(tenant=tenant, name="demo-agent").credential
    elif credential.revoked_at is not None or credential.expires_at is not None:
        credential.revoked_at = credential.expires_at = None
        credential.save(update_fields=["revoked_at", "expires_at"])
    credential.targets.set([target])
    credential.rules.all().delete()
    for order, (method, path, description) in enumerate(DEMO_RULES):
        allow_rule_create(
            credential=credential, method=method, path=path, description=description, order=order
        )
    return credential_rotate(credential=credential).token


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _start_upstream(port: int, secret: str) -> subprocess.Popen[bytes]:
    """Start the demo MCP server and wait until it answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.demo_upstream", "--port", str(port)],
        env={**os.environ, "DEMO_UPSTREAM_TOKEN": secret},
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/mcp", timeout=1)
        except urllib.error.HTTPError:
            return process  # it answers (401 without the secret): it is up
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.2)
    _stop(process)
    raise RuntimeError(f"demo MCP server did not start on port {port}")


def _stop(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """Terminate ``process``, wait up to ``grace`` seconds, then kill it."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _banner(proxy_url: str, token: str) -> str:
    return f"""
MCP gateway demo
================
Proxy URL : {proxy_url}
Token     : {token}
Allowed   : search_docs, current_time, docs://* resources (delete_all_documents is denied)
Admin     : create a login with `python3 dev.py manage createsuperuser`, then open /admin/

Try it (in another shell, from this directory):

.venv/bin/python - <<'PY'
import asyncio, httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

async def main():
    http = httpx2.AsyncClient(headers={{"Authorization": "Bearer {token}"}})
    async with Client(streamable_http_client("{proxy_url}", http_client=http)) as client:
        print([t.name for t in (await client.list_tools()).tools])
        print((await client.call_tool("search_docs", {{"query": "audit"}})).structured_content)

asyncio.run(main())
PY
"""
