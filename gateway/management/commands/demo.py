"""``manage.py demo``: the gateway with a bundled demo MCP server, a demo tenant, target and agent.

Migrates the database, starts ``gateway.demo_upstream`` on a loopback port behind its own secret,
(re)creates the ``demo`` tenant, the ``demo`` target and the ``demo-agent`` credential (a fresh
token each run), prints the proxy URL, the token and a client example, then serves the gateway.
"""

from __future__ import annotations

import atexit
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from gateway.models import Credential, Target, Tenant
from gateway.services import credential_create, target_create, target_set_upstream_auth, tenant_create

DEMO_RULES = [
    ("POST", "/tools/search_docs", "search the demo documents"),
    ("POST", "/tools/current_time", "read the clock"),
    ("POST", "/resources/docs://*", "read demo documents"),
]


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
        call_command("migrate", verbosity=0)
        upstream_secret = secrets.token_urlsafe(24)
        upstream_url = f"http://127.0.0.1:{upstream_port}/mcp"
        if not no_serve:
            self._start_upstream(upstream_port, upstream_secret)
        token = self._configure(upstream_url, upstream_secret)
        self.stdout.write(_banner(f"http://{host}:{port}/mcp/demo/", token))
        if not no_serve:
            call_command("serve", host=host, port=port)

    def _start_upstream(self, port: int, secret: str) -> None:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.demo_upstream", "--port", str(port), "--token", secret]
        )
        atexit.register(process.terminate)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/mcp", timeout=1)
            except urllib.error.HTTPError:
                return  # it answers (401 without the secret): it is up
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"demo MCP server did not start on port {port}")

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
        Credential.objects.filter(tenant=tenant, name="demo-agent").delete()
        issued = credential_create(
            tenant=tenant, name="demo-agent", targets=[target], allow=[(m, p) for m, p, _ in DEMO_RULES]
        )
        rules = issued.credential.rules.order_by("order")
        for rule, (_, _, description) in zip(rules, DEMO_RULES, strict=True):
            rule.description = description
            rule.save(update_fields=["description"])
        return issued.token


def _banner(proxy_url: str, token: str) -> str:
    return f"""
MCP gateway demo
================
Proxy URL : {proxy_url}
Token     : {token}
Allowed   : search_docs, current_time, docs://* resources (delete_all_documents is denied)
Admin     : create a login with `python manage.py createsuperuser`, then open /admin/

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
