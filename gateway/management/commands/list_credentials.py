"""``manage.py list_credentials [--tenant T] [--target SLUG] [--all] [--json]``: the agents'
credentials, their status, targets, expiry and last use (never a token or secret)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, listing_filters
from gateway.management.commands._describe import credential_as_json, credential_line
from gateway.selectors import credential_list


class Command(GatewayCommand):
    """List credentials by tenant and name; deactivated ones with ``--all``."""

    help = "List credentials: status, targets, expiry, last use. Deactivated ones only with --all."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--tenant", metavar="NAME", help="Only this tenant's credentials.")
        parser.add_argument("--target", metavar="SLUG", help="Only credentials bound to this target.")
        parser.add_argument("--all", action="store_true", help="Include deactivated credentials.")

    def handle(self, *args: Any, **options: Any) -> None:
        credentials = list(credential_list(**listing_filters(options), include_deactivated=options["all"]))
        data = {"credentials": [credential_as_json(c) for c in credentials]}
        self.emit(options, data, "\n".join(credential_line(c) for c in credentials) or "No credential.")
