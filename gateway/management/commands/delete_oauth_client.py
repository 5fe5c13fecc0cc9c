"""``manage.py delete_oauth_client CLIENT_ID [--json]``: revoke an OAuth client: it and every token
it holds are deleted, and the proxy refuses those tokens within a second."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser
from oauth2_provider.models import get_application_model

from gateway.management.commands._cli import GatewayCommand, service_errors
from gateway.oauth.services import oauth_client_delete


class Command(GatewayCommand):
    """Delete an OAuth client by its client id (list_oauth_clients)."""

    help = "Revoke an OAuth client: delete it and every token it holds."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("client_id", help="The client id (list_oauth_clients).")

    def handle(self, *args: Any, **options: Any) -> None:
        client_id = options["client_id"]
        application = (
            get_application_model()
            .objects.select_related("gateway_client")
            .filter(client_id=client_id)
            .first()
        )
        if application is None:
            raise CommandError(f"No OAuth client with client id {client_id!r}.")
        binding = getattr(application, "gateway_client", None)
        credential_id = binding.credential_id if binding is not None else None
        with service_errors():
            oauth_client_delete(application=application)
        data = {"client_id": client_id, "credential_id": credential_id, "deleted": True}
        self.emit(options, data, f"Deleted OAuth client {client_id} and every token it held.")
