"""API callers for the tests: a user of a role with an API token, calling with Django's test client."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.test import Client

from gateway.models import Tenant
from gateway.services import api_token_create, user_create

PASSWORD = "a-long-enough-test-password-1"


@dataclass
class Caller:
    """A user calling the API with its token (``Authorization: Token <t>``)."""

    user: User
    token: str
    client: Client

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
        extra.setdefault("HTTP_AUTHORIZATION", f"Token {self.token}")
        data = json.dumps(body) if body is not None else None
        kwargs: dict[str, Any] = {"content_type": "application/json"} if data is not None else {}
        return getattr(self.client, method.lower())(path, data, **kwargs, **extra)


def api_caller(user: User, scope: str = "write") -> Caller:
    issued = api_token_create(user=user, scope=scope)
    return Caller(user=user, token=issued.token, client=Client())


def member_caller(tenant: Tenant, role: str, name: str, scope: str = "write") -> Caller:
    """A tenant admin or reviewer of ``tenant`` with an API token of ``scope``."""
    return api_caller(user_create(username=name, tenant=tenant, role=role, password=PASSWORD).user, scope)


def superuser_caller(name: str = "root", scope: str = "write") -> Caller:
    return api_caller(User.objects.create_superuser(name, f"{name}@example.com", PASSWORD), scope)
