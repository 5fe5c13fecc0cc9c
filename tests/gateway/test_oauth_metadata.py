"""What an OAuth client discovers, and what the server refuses on the way: the RFC 8414 and RFC 9728
documents, PKCE without S256, registration with no tenant accepting it, consent a tenant does not
allow, and client metadata documents at addresses the gateway must never fetch."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import urlencode

import httpx2
import pytest
from django.contrib.auth.models import User
from mcp.shared.auth import OAuthMetadata, ProtectedResourceMetadata
from oauth2_provider.cimd import CIMDError

from gateway.models import Target, Tenant
from gateway.oauth.cimd import EgressMetadataFetcher, max_age, pinned_request
from tests.conftest import Gateway, run
from tests.gateway.oauth_support import ADMIN_PASSWORD, REDIRECT_URI, AdminBrowser, code_result


@pytest.fixture
def admin(transactional_db: None, django_user_model: type[User], settings) -> User:
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    return django_user_model.objects.create_superuser("admin", "admin@example.com", ADMIN_PASSWORD)


def allow_dcr(tenant: Tenant, scopes: str = "tools:search") -> Tenant:
    tenant.oauth_allow_dcr, tenant.oauth_scopes = True, scopes
    tenant.save()
    return tenant


def register(gateway: Gateway) -> httpx2.Response:
    return httpx2.post(
        f"{gateway.url}/oauth/register/",
        json={"client_name": "agent", "redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"},
    )


def test_authorization_server_metadata_validates_and_advertises_s256_only(gateway, tenant):
    document = httpx2.get(f"{gateway.url}/.well-known/oauth-authorization-server").json()

    metadata = OAuthMetadata.model_validate(document)
    assert str(metadata.issuer).rstrip("/") == gateway.url
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["grant_types_supported"] == ["authorization_code", "client_credentials", "refresh_token"]
    assert document["response_types_supported"] == ["code"]
    for endpoint in ("authorization", "token", "revocation", "introspection", "registration"):
        assert document[f"{endpoint}_endpoint"].startswith(f"{gateway.url}/oauth/")


def test_every_proxy_url_has_protected_resource_metadata(gateway, target):
    allow_dcr(target.tenant, "tools:search\nprompts:*")
    for path in (
        "/.well-known/oauth-protected-resource/mcp/docs/",
        "/.well-known/oauth-protected-resource/mcp/docs",
    ):
        document = httpx2.get(gateway.url + path).json()

        metadata = ProtectedResourceMetadata.model_validate(document)
        assert str(metadata.resource) == gateway.proxy_url("docs")
        assert [str(url).rstrip("/") for url in metadata.authorization_servers] == [gateway.url]
        assert metadata.scopes_supported == ["tools:search", "prompts:*"]
    assert httpx2.get(f"{gateway.url}/.well-known/oauth-protected-resource/mcp/nowhere/").status_code == 404


def test_a_proxy_url_without_a_token_points_at_its_metadata(gateway, target):
    reply = httpx2.post(gateway.proxy_url("docs"), json={"jsonrpc": "2.0", "id": 1, "method": "ping"})

    assert reply.status_code == 401
    assert reply.headers["www-authenticate"].endswith(
        f'resource_metadata="{gateway.url}/.well-known/oauth-protected-resource/mcp/docs/"'
    )


def test_registration_is_refused_while_no_tenant_accepts_registered_clients(gateway, tenant):
    assert register(gateway).status_code == 401
    allow_dcr(tenant)
    assert register(gateway).status_code == 201


def test_a_registration_body_past_16_kib_is_refused(gateway, tenant):
    allow_dcr(tenant)
    reply = httpx2.post(f"{gateway.url}/oauth/register/", content=b"{" + b" " * 20_000 + b"}")

    assert reply.status_code == 413


def authorization_url(gateway: Gateway, client_id: str, **overrides: str) -> str:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "state": "s1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": gateway.proxy_url("docs"),
        "scope": "tools:search",
        **overrides,
    }
    return f"{gateway.url}/oauth/authorize/?{urlencode(params)}"


def consent(gateway: Gateway, url: str) -> httpx2.Response:
    async def press() -> httpx2.Response:
        browser = AdminBrowser(gateway.url)
        try:
            page = await browser.open_consent(url)
            if page.status_code != 200:
                return page
            return await browser.consent(url)
        finally:
            await browser.aclose()

    return run(press())


def test_pkce_plain_is_refused(gateway, target, admin):
    allow_dcr(target.tenant)
    client_id = register(gateway).json()["client_id"]

    reply = consent(
        gateway, authorization_url(gateway, client_id, code_challenge="x" * 43, code_challenge_method="plain")
    )

    assert reply.status_code in (302, 400)
    assert "code=" not in reply.headers.get("location", "")
    assert "invalid_request" in reply.headers.get("location", "") + reply.text


def test_an_authorization_without_pkce_is_refused(gateway, target, admin):
    allow_dcr(target.tenant)
    client_id = register(gateway).json()["client_id"]
    url = authorization_url(gateway, client_id)
    url = url.replace("code_challenge=", "x=").replace("code_challenge_method=", "y=")

    reply = consent(gateway, url)

    assert "code=" not in reply.headers.get("location", "")


def test_the_consent_page_names_tenant_target_and_scopes(gateway, target, admin):
    allow_dcr(target.tenant)
    client_id = register(gateway).json()["client_id"]

    async def look() -> str:
        browser = AdminBrowser(gateway.url)
        try:
            return (await browser.open_consent(authorization_url(gateway, client_id))).text
        finally:
            await browser.aclose()

    page = run(look())

    assert (
        "acme" in page and "/mcp/docs/" in page and "tools:search" in page and "call the tool search" in page
    )
    assert "<script" not in page and "<link" not in page and "src=" not in page  # nothing loaded, no CDN


def test_a_scope_the_tenant_does_not_allow_is_not_granted(gateway, target, admin):
    allow_dcr(target.tenant)
    client_id = register(gateway).json()["client_id"]

    reply = consent(gateway, authorization_url(gateway, client_id, scope="tools:search tools:delete_all"))

    assert reply.status_code == 400 and "tools:delete_all" in reply.text


def test_a_tenant_that_does_not_accept_registered_clients_is_not_granted(gateway, target, admin, upstream):
    other = Tenant.objects.create(name="other-co")
    Target.objects.create(tenant=other, slug="theirs", upstream_url=upstream.url)
    allow_dcr(target.tenant)
    client_id = register(gateway).json()["client_id"]

    reply = consent(gateway, authorization_url(gateway, client_id, resource=gateway.proxy_url("theirs")))

    assert reply.status_code == 400 and "does not accept dynamically registered" in reply.text


def test_a_denied_consent_grants_nothing(gateway, target, admin):
    allow_dcr(target.tenant)
    client_id = register(gateway).json()["client_id"]

    async def deny() -> httpx2.Response:
        browser = AdminBrowser(gateway.url)
        try:
            return await browser.consent(authorization_url(gateway, client_id), allow=False)
        finally:
            await browser.aclose()

    reply = run(deny())

    assert "error=access_denied" in reply.headers["location"]
    from gateway.oauth.models import OAuthClient

    assert not OAuthClient.objects.exists()


def test_a_code_is_exchanged_once_and_its_refresh_token_rotates(gateway, target, admin):
    allow_dcr(target.tenant)
    client_id = register(gateway).json()["client_id"]
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    result = code_result(consent(gateway, authorization_url(gateway, client_id, code_challenge=challenge)))
    exchange = {
        "grant_type": "authorization_code",
        "code": result.code,
        "redirect_uri": REDIRECT_URI,
        "client_id": client_id,
        "code_verifier": verifier,
    }

    first = httpx2.post(f"{gateway.url}/oauth/token/", data=exchange).json()
    again = httpx2.post(f"{gateway.url}/oauth/token/", data=exchange)
    refreshed = httpx2.post(
        f"{gateway.url}/oauth/token/",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": client_id},
    ).json()
    reused = httpx2.post(
        f"{gateway.url}/oauth/token/",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": client_id},
    )

    assert first["access_token"].startswith("mgo_") and first["refresh_token"].startswith("mgr_")
    assert again.status_code == 400
    assert refreshed["refresh_token"] != first["refresh_token"] and refreshed["scope"] == "tools:search"
    assert reused.status_code == 400
    from oauth2_provider.models import AccessToken

    assert AccessToken.objects.filter(token__startswith="mgo_").count() == 0  # only digests are stored


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/client.json",
        "https://10.1.2.3/client.json",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/client.json",
        "https://localhost/client.json",
        "http://client.example.com/client.json",
    ],
)
def test_a_client_metadata_document_is_never_fetched_from_a_private_address(url):
    with pytest.raises(CIMDError):
        pinned_request(url)
    with pytest.raises(CIMDError):
        EgressMetadataFetcher().fetch(url)


def test_a_metadata_document_is_cached_between_five_minutes_and_a_day():
    assert (
        max_age(""),
        max_age("max-age=10"),
        max_age("public, max-age=3600"),
        max_age("max-age=999999"),
    ) == (300, 300, 3600, 86_400)


def test_a_cimd_client_at_a_private_address_gets_no_consent_page(gateway, target, admin):
    target.tenant.oauth_allow_cimd, target.tenant.oauth_scopes = True, "tools:search"
    target.tenant.save()

    async def look() -> httpx2.Response:
        browser = AdminBrowser(gateway.url)
        try:
            return await browser.open_consent(authorization_url(gateway, "https://127.0.0.1/client.json"))
        finally:
            await browser.aclose()

    reply = run(look())

    assert reply.status_code == 400 and "authorizationForm" not in reply.text


def test_a_tenant_admin_cannot_consent_to_a_client_for_another_tenants_target(
    gateway, target, upstream, settings
):
    # given: both tenants accept registered clients, and alice administers only the other one
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False  # the test talks plain HTTP
    from gateway.oauth.models import OAuthClient
    from gateway.services import target_create, user_create
    from tests.gateway.oauth_support import hidden_fields

    other = allow_dcr(Tenant.objects.create(name="other-co"))
    target_create(tenant=other, slug="theirs", upstream_url=upstream.url)
    user_create(username="alice", tenant=other, role="admin", password=ADMIN_PASSWORD)
    allow_dcr(target.tenant)
    client_id = register(gateway).json()["client_id"]

    async def press() -> tuple[httpx2.Response, httpx2.Response]:
        browser = AdminBrowser(gateway.url, username="alice")
        try:
            # the consent page for acme's target is refused ...
            refused = await browser.open_consent(authorization_url(gateway, client_id))
            # ... and so is a consent posted for it from the page of alice's own target
            own = await browser.open_consent(
                authorization_url(gateway, client_id, resource=gateway.proxy_url("theirs"))
            )
            assert own.status_code == 200, own.text[:500]
            form = {**hidden_fields(own.text), "resource": gateway.proxy_url("docs"), "allow": "true"}
            return refused, await browser.http.post("/oauth/authorize/", data=form)
        finally:
            await browser.aclose()

    page, posted = run(press())

    # then: refused like a target that does not exist, and nothing was granted in acme
    for reply in (page, posted):
        assert reply.status_code == 400 and "not the proxy URL of a target you administer" in reply.text
    assert not OAuthClient.objects.exists()
    assert not target.tenant.credentials.filter(name__startswith="OAuth").exists()
