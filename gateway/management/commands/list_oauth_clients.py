"""``manage.py list_oauth_clients [--credential ID] [--tenant T] [--json]``: the OAuth clients whose
tokens act as a credential: client id, name, grant, who registered it. Never a client secret (only
its hash is stored)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, credential_by_id, tenant_by_name
from gateway.oauth.models import OAuthClient
from gateway.oauth.selectors import oauth_client_list
from gateway.oauth.services import GRANTS

_GRANT_NAMES = {value: name for name, value in GRANTS.items()}


def oauth_client_as_json(binding: OAuthClient) -> dict[str, Any]:
    application = binding.application
    grant = str(application.authorization_grant_type)
    return {
        "id": binding.pk,
        "client_id": application.client_id,
        "name": application.name,
        "grant": _GRANT_NAMES.get(grant, grant),
        "redirect_uris": str(application.redirect_uris or "").split(),
        "registered_by": application.registration_source,
        "credential_id": binding.credential_id,
        "credential": binding.credential.name,
        "tenant": binding.credential.tenant.name,
        "created_at": binding.created_at,
    }


class Command(GatewayCommand):
    """List the OAuth clients bound to credentials."""

    help = "List OAuth clients (of one credential or tenant): client id, name, grant, registered by."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--credential", metavar="ID", help="Only this credential's clients.")
        parser.add_argument("--tenant", metavar="NAME", help="Only this tenant's clients.")

    def handle(self, *args: Any, **options: Any) -> None:
        credential = credential_by_id(options["credential"]) if options["credential"] else None
        tenant = tenant_by_name(options["tenant"]) if options["tenant"] else None
        clients = [
            oauth_client_as_json(binding)
            for binding in oauth_client_list(
                credential_id=credential.pk if credential else None, tenant_id=tenant.pk if tenant else None
            )
        ]
        lines = [
            f"{c['client_id']} {c['name']!r}: {c['grant']}, credential {c['credential_id']} "
            f"{c['tenant']}/{c['credential']}, registered by {c['registered_by']}"
            for c in clients
        ]
        self.emit(options, {"oauth_clients": clients}, "\n".join(lines) or "No OAuth client.")
