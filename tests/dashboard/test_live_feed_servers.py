"""The live feed's WebSocket under each ASGI server ``manage.py serve`` runs (uvicorn, granian,
daphne): a logged-in admin's socket subscribes and a proxied call arrives on it."""

from __future__ import annotations

import asyncio
import json
import re
import time

import httpx2
import orjson
import pytest
from websockets.asyncio.client import connect

from tests.gateway.test_serve import manage, serve_env, serving, wait_for  # noqa: F401  (a fixture)

PASSWORD = "a-long-enough-test-password-1"
TOKEN = re.compile(r"mgw_[a-z0-9]{10}_[A-Za-z0-9_-]+")
SET_UP = f"""
from django.contrib.auth.models import User
from gateway.services import credential_create, target_create, tenant_create
tenant = tenant_create(name="acme")
docs = target_create(tenant=tenant, slug="docs", upstream_url="http://127.0.0.1:9/mcp")
issued = credential_create(tenant=tenant, name="ci-agent", targets=[docs], allow=[("*", "/**")])
User.objects.create_superuser("root", "r@example.com", {PASSWORD!r})
print(issued.token)
"""


def log_in(url: str) -> str:
    """The session cookie of a superuser logged in on the admin's login page."""
    with httpx2.Client(base_url=url, trust_env=False, timeout=10) as client:
        page = client.get("/admin/login/")
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        form = {"username": "root", "password": PASSWORD, "csrfmiddlewaretoken": csrf, "next": "/dashboard/"}
        answer = client.post(
            "/admin/login/?next=/dashboard/", data=form, headers={"Referer": f"{url}/admin/login/"}
        )
        assert answer.status_code == 302, answer.text[:300]
        return f"sessionid={client.cookies['sessionid']}"


@pytest.mark.parametrize("server", ["uvicorn", "granian", "daphne"])
def test_the_live_feed_works_under_every_server_serve_runs(serve_env, server: str) -> None:  # noqa: F811
    # given a gateway served by `server`, a tenant with a target and a credential, and a superuser
    env = {
        **serve_env,
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "GATEWAY_UPSTREAM_ALLOW": "127.0.0.0/8",
    }
    with serving(env, "--server", server) as (url, process):
        # one process makes the tenant, the target (nothing listens on port 9: the call is audited as
        # an upstream error, with its tenant), the credential and the superuser, through the services
        made = manage("shell", "-c", SET_UP, env=env)
        assert made.returncode == 0, made.stderr[-2000:]
        token = TOKEN.search(made.stdout).group()  # type: ignore[union-attr]
        wait_for(f"{url}/healthz", process)
        cookie = log_in(url)

        async def scenario() -> list[dict[str, object]]:
            headers = {"Cookie": cookie, "Origin": url}
            async with connect(
                url.replace("http", "ws") + "/dashboard/1/feed", additional_headers=headers, open_timeout=15
            ) as socket:
                assert orjson.loads(await asyncio.wait_for(socket.recv(), 15)) == {"type": "subscribed"}
                # when an agent calls a tool through the gateway
                call = {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "tools/call",
                    "params": {"name": "search", "arguments": {}},
                }
                async with httpx2.AsyncClient(trust_env=False, timeout=30) as http:
                    await http.post(
                        f"{url}/mcp/docs/",
                        content=json.dumps(call),
                        headers={
                            "Authorization": f"Bearer {token}",
                            "Content-Type": "application/json",
                            "Accept": "application/json, text/event-stream",
                        },
                    )
                deadline, calls = time.monotonic() + 20, []
                while time.monotonic() < deadline and not calls:
                    message = orjson.loads(await asyncio.wait_for(socket.recv(), 20))
                    calls += [c for c in message["calls"] if c["tool"] == "search"]
                return calls

        calls = asyncio.run(scenario())

    # then the call arrives on the socket
    assert calls and calls[0]["credential"] == "ci-agent" and calls[0]["target"] == "docs"
