"""``manage.py create_oauth_client --credential ID --grant client_credentials``: an OAuth client whose
tokens act as that credential. The client secret is printed once; only its hash is stored."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, credential_by_id, service_errors
from gateway.oauth.services import GRANTS, oauth_client_create


class Command(GatewayCommand):
    """Create a confidential OAuth client for a credential and print its id and secret (once)."""

    help = "Create an OAuth client for a credential (client credentials or authorization code with PKCE)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--credential", required=True, metavar="ID", help="Id of the credential.")
        parser.add_argument("--grant", required=True, choices=sorted(GRANTS), help="The grant it uses.")
        parser.add_argument("--name", default="", help="A name shown on the credential and consent pages.")
        parser.add_argument(
            "--redirect-uri",
            action="append",
            default=[],
            metavar="URL",
            help="Where authorization codes are sent (authorization_code; repeatable).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        credential = credential_by_id(options["credential"])
        with service_errors():
            issued = oauth_client_create(
                credential=credential,
                grant=options["grant"],
                name=options["name"],
                redirect_uris=options["redirect_uri"],
            )
        application = issued.application
        data = {
            "client_id": application.client_id,
            "client_secret": issued.client_secret,
            "credential_id": credential.id,
            "grant": options["grant"],
            "name": application.name,
            "token_endpoint": "/oauth/token/",
        }
        text = (
            f"Created OAuth client {application.client_id} for credential {credential.id} "
            f"({options['grant']}).\nClient secret (shown once, copy it now): {issued.client_secret}\n"
            "Get a token: POST /oauth/token/ with grant_type=client_credentials and resource=<proxy URL>, "
            "authenticating with the client id and secret (HTTP Basic)."
        )
        self.emit(options, data, text)
