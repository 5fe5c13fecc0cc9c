"""An off-the-shelf MCP client gets through the gateway's OAuth flow: the official SDK's OAuth client
provider discovers the metadata from a 401, registers itself, sends the admin to the consent page,
exchanges the code with PKCE and calls an allowed tool; its token is worth nothing elsewhere."""

from __future__ import annotations

import httpx2
import pytest
from django.contrib.auth.models import User

from gateway.models import Credential, Target, Tenant
from gateway.oauth.models import OAuthClient
from gateway.services import target_create
from tests.conftest import Gateway, Upstream, run
from tests.gateway.oauth_support import ADMIN_PASSWORD, AdminBrowser, MemoryStorage, sdk_provider, sdk_session


@pytest.fixture
def oauth_tenant(tenant: Tenant) -> Tenant:
    tenant.oauth_allow_dcr = True
    tenant.oauth_scopes = "tools:search"
    tenant.save()
    return tenant


@pytest.fixture
def admin(transactional_db: None, django_user_model: type[User], settings) -> User:
    # The tests' gateway speaks plain HTTP: the browser must get its session cookie back.
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    return django_user_model.objects.create_superuser("admin", "admin@example.com", ADMIN_PASSWORD)


@pytest.fixture
def other_target(oauth_tenant: Tenant, upstream: Upstream) -> Target:
    return target_create(tenant=oauth_tenant, slug="other", upstream_url=upstream.url)


def test_mcp_sdk_oauth_client_registers_gets_consent_and_calls_an_allowed_tool(
    gateway: Gateway, oauth_tenant, target, other_target, admin
):
    storage = MemoryStorage()

    async def agent() -> tuple[str, list[str]]:
        browser = AdminBrowser(gateway.url)
        try:
            provider = sdk_provider(gateway.proxy_url("docs"), browser, storage)
            async with sdk_session(gateway.proxy_url("docs"), auth=provider) as client:
                result = await client.call_tool("search", {"query": "oauth"})
                listed = [tool.name for tool in (await client.list_tools()).tools]
            return str(result.content[0].text), listed  # type: ignore[union-attr]
        finally:
            await browser.aclose()

    text, listed = run(agent())

    assert "oauth" in text
    assert listed == ["search"]  # the token's scope, tools:search, trims the listing
    binding = OAuthClient.objects.select_related("credential").get()
    assert binding.credential.tenant == oauth_tenant
    assert list(binding.credential.targets.all()) == [target]
    assert [(r.method, r.path) for r in binding.credential.rules.all()] == [("POST", "/tools/search")]
    assert storage.tokens is not None and storage.tokens.access_token.startswith("mgo_")


def test_the_token_is_refused_at_another_target_with_a_pointer_to_its_metadata(
    gateway: Gateway, oauth_tenant, target, other_target, admin
):
    storage = MemoryStorage()

    async def agent() -> None:
        browser = AdminBrowser(gateway.url)
        try:
            provider = sdk_provider(gateway.proxy_url("docs"), browser, storage)
            async with sdk_session(gateway.proxy_url("docs"), auth=provider) as client:
                await client.call_tool("search", {"query": "x"})
        finally:
            await browser.aclose()

    run(agent())
    assert storage.tokens is not None
    Credential.objects.get(oauth_clients__isnull=False).targets.add(other_target)  # even if it may use both

    reply = httpx2.post(
        gateway.proxy_url("other"),
        headers={"Authorization": f"Bearer {storage.tokens.access_token}", "Accept": "application/json"},
        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
    )

    assert reply.status_code == 401
    assert reply.headers["www-authenticate"] == (
        f'Bearer realm="mcp-gateway", resource_metadata="{gateway.url}'
        '/.well-known/oauth-protected-resource/mcp/other/"'
    )
    gateway.flush_audit()
    from audit.models import AuditEvent

    event = AuditEvent.objects.filter(target_slug="other").exclude(kind="change").latest("id")
    assert event.reason == "OAuth token issued for another target (audience)"
    assert storage.tokens.access_token not in str(AuditEvent.objects.values_list().filter(pk=event.pk).get())
