"""Who may register an OAuth client: django-oauth-toolkit's permission classes for dynamic client
registration (RFC 7591) and client ID metadata documents.

Registration itself is tenant-less (the authorization server is the whole gateway), so it is
accepted while at least one tenant accepts such clients; whether a client may act in a tenant is
decided when an admin consents to it for one of that tenant's targets
(``gateway.oauth.selectors.consent_problem``).
"""

from __future__ import annotations

from typing import Any

from gateway.models import Tenant


class TenantAllowsDcr:
    """Dynamic registration is open while some tenant allows dynamically registered clients."""

    def has_permission(self, request: Any) -> bool:
        return Tenant.objects.filter(oauth_allow_dcr=True).exists()


class TenantAllowsCimd:
    """A metadata-document client is fetched while some tenant allows such clients."""

    def has_permission(self, request: Any, client_id: str) -> bool:
        return Tenant.objects.filter(oauth_allow_cimd=True).exists()
