"""Shared fixtures: real upstream MCP server, real gateway (uvicorn), factories, MCP client."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from gateway.models import Target, Tenant
from gateway.services import IssuedCredential, credential_create, target_create, tenant_create
from tests.servers import ServerThread
from tests.upstream import build_upstream

T = TypeVar("T")

UPSTREAM_SECRET = "upstream-secret-never-shown-to-agents"


def require_service(name: str, reason: str) -> None:
    """Skip a test that needs a service not configured here, or fail under GATEWAY_REQUIRE_SERVICES."""
    if os.environ.get("GATEWAY_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{name} is required (GATEWAY_REQUIRE_SERVICES=1) but {reason}")
    pytest.skip(f"{name} not available: {reason}")


@pytest.fixture
def redis_url() -> str:
    """The Redis of these tests (REDIS_URL): for meters across processes, the Celery broker and the like."""
    url = os.environ.get("REDIS_URL", "")
    if not url:
        require_service("Redis", "REDIS_URL is not set")
    return url


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run an agent coroutine from a synchronous test."""
    return asyncio.run(coro)


@pytest.fixture(scope="session", autouse=True)
def _close_background_connections(django_db_setup: None) -> Iterator[None]:
    """The background thread keeps its connection open: close it before the test database is dropped."""
    yield
    from gateway.background import close_background_connections

    close_background_connections()


class Upstream:
    def __init__(self) -> None:
        app, self.seen_headers = build_upstream()
        self.server = ServerThread(app).start()
        self.url = f"{self.server.url}/mcp"


@pytest.fixture(scope="session")
def upstream() -> Iterator[Upstream]:
    """A real MCP server on a loopback port (session-wide)."""
    server = Upstream()
    yield server
    server.server.stop()


class Gateway:
    """The gateway's ASGI application served by uvicorn on a loopback port."""

    def __init__(self) -> None:
        from gateway.asgi import application

        self.server = ServerThread(application).start()
        self.url = self.server.url

    def proxy_url(self, slug: str) -> str:
        return f"{self.url}/mcp/{slug}/"

    def flush_audit(self) -> None:
        """Wait until every audit event of the requests served so far is in the database."""
        from gateway.proxy.runtime import runtime_for_loop

        async def flush() -> None:
            runtime = runtime_for_loop(self.server.loop)
            if runtime is not None:
                await runtime.audit.flush()

        self.server.call(flush())


@pytest.fixture
def gateway(transactional_db: None) -> Iterator[Gateway]:
    """A running gateway on a real ASGI server, over the test database."""
    from policies.cache import policy_cache

    policy_cache.invalidate()
    server = Gateway()
    yield server
    server.server.stop()
    policy_cache.invalidate()


@contextmanager
def gateway_configured(settings: Any, **gateway: str) -> Iterator[Gateway]:
    """A running gateway (as the ``gateway`` fixture gives) with these GATEWAY settings (names without
    the ``GATEWAY_`` prefix, values as the environment would give them), for a fixture of a test
    that needs small limits; the cached settings and policies are cleared before and after."""
    from gateway.conf import gateway_settings
    from policies.cache import policy_cache

    settings.GATEWAY = {**settings.GATEWAY, **gateway}
    gateway_settings.cache_clear()
    policy_cache.invalidate()
    server = Gateway()
    try:
        yield server
    finally:
        server.server.stop()
        gateway_settings.cache_clear()
        policy_cache.invalidate()


@pytest.fixture
def tenant(transactional_db: None) -> Tenant:
    return tenant_create(name="acme")


@pytest.fixture
def target(tenant: Tenant, upstream: Upstream) -> Target:
    return target_create(
        tenant=tenant, slug="docs", upstream_url=upstream.url, auth_type="bearer", auth_secret=UPSTREAM_SECRET
    )


def issue_credential(
    tenant: Tenant, target: Target | None, *allow: str, name: str = "agent"
) -> IssuedCredential:
    """A credential bound to ``target`` with rules given as ``'POST /tools/search'`` strings."""
    rules = [tuple(rule.split(" ", 1)) for rule in allow]
    return credential_create(tenant=tenant, name=name, targets=[target] if target else [], allow=rules)


@asynccontextmanager
async def mcp_client(
    url: str,
    token: str | None,
    *,
    mode: str = "legacy",
    headers: dict[str, str] | None = None,
    **options: Any,
) -> AsyncIterator[Client]:
    """The official MCP SDK's client over Streamable HTTP, presenting ``token``; ``options`` go to
    ``Client`` (``logging_callback=...``)."""
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    async with httpx2.AsyncClient(headers=all_headers, timeout=30) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode=mode, **options) as client:  # type: ignore[arg-type]
            yield client


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under GATEWAY_REQUIRE_SERVICES=1 (CI), a skipped test is a failed test."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and os.environ.get("GATEWAY_REQUIRE_SERVICES") == "1":
        report.outcome = "failed"
        report.longrepr = f"skipped under GATEWAY_REQUIRE_SERVICES=1: {report.longrepr}"
