"""The OAuth options ``create_tenant`` and ``update_tenant`` share (the underscore hides this module
from Django's command list)."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import CommandParser

from gateway.models import Tenant


def add_oauth_arguments(parser: CommandParser) -> None:
    oauth = parser.add_argument_group("OAuth clients registered by themselves")
    oauth.add_argument(
        "--allow-dcr",
        action=argparse.BooleanOptionalAction,
        help="Accept clients registered by RFC 7591 dynamic registration (an admin still consents).",
    )
    oauth.add_argument(
        "--allow-cimd",
        action=argparse.BooleanOptionalAction,
        help="Accept clients identified by a client ID metadata document URL (an admin still consents).",
    )
    oauth.add_argument(
        "--oauth-scope",
        action="append",
        metavar="SCOPE",
        help="A scope such clients may be granted: tools:NAME, prompts:NAME, resources:URI or mcp "
        "(repeatable; replaces the list).",
    )


def tenant_data(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": tenant.id,
        "name": tenant.name,
        "oauth_allow_dcr": tenant.oauth_allow_dcr,
        "oauth_allow_cimd": tenant.oauth_allow_cimd,
        "oauth_scopes": tenant.oauth_scope_list(),
    }


def tenant_text(tenant: Tenant) -> str:
    kinds = [
        k
        for k, on in (
            ("dynamic registration", tenant.oauth_allow_dcr),
            ("metadata documents", tenant.oauth_allow_cimd),
        )
        if on
    ]
    accepted = ", ".join(kinds) if kinds else "none"
    scopes = ", ".join(tenant.oauth_scope_list()) or "none"
    return f"OAuth clients accepted: {accepted}; scopes they may be granted: {scopes}."
