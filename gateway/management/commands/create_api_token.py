"""``manage.py create_api_token --user NAME --scope read|write [--expires-in SECONDS] --json``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import CommandError, CommandParser

from gateway.management.commands._cli import GatewayCommand, service_errors
from gateway.models import ApiToken
from gateway.services import api_token_create, expires_in


class Command(GatewayCommand):
    """Issue a REST API token that acts as a user, with that user's role; the token is printed once."""

    help = "Create a REST API token for a user (sent as 'Authorization: Token <token>' or 'Bearer <token>')."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--user", required=True, help="The user the token acts as.")
        parser.add_argument("--scope", required=True, choices=ApiToken.Scope.values)
        parser.add_argument("--name", default="", help="What the token is for, e.g. 'terraform'.")
        parser.add_argument("--expires-in", type=int, help="Seconds until it expires (default: never).")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user named {options['user']!r}.")
        seconds = options["expires_in"]
        if seconds is not None and seconds <= 0:
            raise CommandError("--expires-in must be a positive number of seconds.")
        with service_errors():
            issued = api_token_create(
                user=user, scope=options["scope"], name=options["name"], expires_at=expires_in(seconds)
            )
        api_token = issued.api_token
        data = {
            "id": api_token.pk,
            "user": user.username,
            "name": api_token.name,
            "prefix": api_token.prefix,
            "scope": api_token.scope,
            "expires_at": api_token.expires_at,
            "token": issued.token,
        }
        expiry = f", expires {api_token.expires_at:%Y-%m-%d %H:%M:%S} UTC" if api_token.expires_at else ""
        text = (
            f"Created {api_token.scope} API token {api_token.prefix} for {user.username!r}{expiry}.\n"
            f"Token (shown once): {issued.token}"
        )
        self.emit(options, data, text)
