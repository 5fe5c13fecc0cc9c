"""What the OAuth tests share: an admin who consents in a browser (an httpx client with a session),
the official MCP SDK's OAuth client provider wired to that admin, and token requests."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

ADMIN_PASSWORD = "correct-horse-battery-staple"
REDIRECT_URI = "http://127.0.0.1:9/callback"
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


class AdminBrowser:
    """An admin's browser: signs in through the admin login when asked, then answers consent pages."""

    def __init__(self, base_url: str, username: str = "admin") -> None:
        self.base_url = base_url
        self.username = username
        self.http = httpx2.AsyncClient(base_url=base_url, follow_redirects=False, timeout=30)
        self.pages: list[str] = []

    async def open_consent(self, authorization_url: str) -> httpx2.Response:
        """GET the authorization URL, signing in first when redirected to the admin login."""
        response = await self.http.get(authorization_url)
        if response.status_code == 302 and "/admin/login/" in response.headers["location"]:
            await self._sign_in(response.headers["location"])
            response = await self.http.get(authorization_url)
        self.pages.append(response.text)
        return response

    async def _sign_in(self, login_url: str) -> None:
        page = await self.http.get(login_url)
        fields = hidden_fields(page.text)
        next_path = parse_qs(urlsplit(login_url).query).get("next", ["/admin/"])[0]
        answer = await self.http.post(
            "/admin/login/",
            data={**fields, "username": self.username, "password": ADMIN_PASSWORD, "next": next_path},
        )
        assert answer.status_code == 302, answer.text[:500]

    async def consent(self, authorization_url: str, *, allow: bool = True) -> httpx2.Response:
        """Open the consent page and press Authorize (or Deny); the response to that post."""
        page = await self.open_consent(authorization_url)
        assert page.status_code == 200, page.text[:1000]
        data = hidden_fields(page.text)
        if allow:
            data["allow"] = "true"
        return await self.http.post(urlsplit(authorization_url).path, data=data)

    async def aclose(self) -> None:
        await self.http.aclose()


def hidden_fields(page: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in _HIDDEN.findall(page)}


def code_result(redirect: httpx2.Response) -> AuthorizationCodeResult:
    """The authorization response the client's redirect URI would receive."""
    assert redirect.status_code == 302, redirect.text[:1000]
    location = redirect.headers["location"]
    assert location.startswith(REDIRECT_URI), location
    query = {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}
    assert "code" in query, query
    return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))


class MemoryStorage:
    """The SDK's token storage, in memory: the test reads the tokens it got."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


def sdk_provider(server_url: str, browser: AdminBrowser, storage: MemoryStorage) -> OAuthClientProvider:
    """The MCP SDK's own OAuth client provider: discovery, dynamic registration, PKCE; the consent step
    is the admin's browser."""
    results: list[AuthorizationCodeResult] = []

    async def redirect_handler(authorization_url: str) -> None:
        results.append(code_result(await browser.consent(authorization_url)))

    async def callback_handler() -> AuthorizationCodeResult:
        return results.pop()

    metadata = OAuthClientMetadata(
        client_name="sdk agent",
        redirect_uris=[REDIRECT_URI],  # type: ignore[list-item]
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
    )
    return OAuthClientProvider(
        server_url=server_url,
        client_metadata=metadata,
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )


@asynccontextmanager
async def sdk_session(
    url: str, auth: Any = None, headers: dict[str, str] | None = None
) -> AsyncIterator[Client]:
    """An MCP SDK client session at ``url``, authenticating with ``auth`` (an httpx auth) or ``headers``."""
    async with httpx2.AsyncClient(auth=auth, headers=headers or {}, timeout=30) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode="legacy") as client:  # type: ignore[arg-type]
            yield client


def client_credentials_token(
    base_url: str, client_id: str, secret: str, resource: str, **extra: str
) -> httpx2.Response:
    """POST a client credentials token request (HTTP Basic client authentication)."""
    return httpx2.post(
        f"{base_url}/oauth/token/",
        data={"grant_type": "client_credentials", "resource": resource, **extra},
        auth=(client_id, secret),
        timeout=30,
    )
