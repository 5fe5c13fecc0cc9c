"""``manage.py update_credential ID [--name N] [--expires-in S | --expires-at ISO | --no-expiry]
[--target SLUG ...] [--json]``: rename a credential, change its expiry or the targets it may use.

Its token stays the same (``rotate_credential`` replaces it); its rules are changed with ``add_rule``
and ``delete_rule``. Every gateway process applies the change within a second.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import CommandError, CommandParser

from gateway.management.commands._cli import (
    GatewayCommand,
    credential_by_id,
    parse_moment,
    service_errors,
    target_in_tenant,
)
from gateway.management.commands._describe import credential_as_json, credential_line
from gateway.services import KEEP, Keep, credential_update, expires_in


class Command(GatewayCommand):
    """Update a credential and print it as it now is."""

    help = "Rename a credential, change its expiry, or replace the targets it is bound to."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("id", help="Id of the credential.")
        parser.add_argument("--name", help="New name, unique within the tenant.")
        expiry = parser.add_mutually_exclusive_group()
        expiry.add_argument("--expires-in", type=int, metavar="SECONDS", help="Expire SECONDS from now.")
        expiry.add_argument("--expires-at", metavar="ISO", help="Expire at this time (UTC unless given).")
        expiry.add_argument("--no-expiry", action="store_true", help="Never expire.")
        parser.add_argument(
            "--target",
            action="append",
            metavar="SLUG",
            help="Bind to exactly these targets (repeatable; replaces the current ones).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        expires_at = _expiry(options)
        if options["name"] is None and isinstance(expires_at, Keep) and options["target"] is None:
            raise CommandError(
                "Nothing to change: give --name, --expires-in, --expires-at, --no-expiry or --target."
            )
        credential = credential_by_id(options["id"])
        targets = (
            [target_in_tenant(credential.tenant, slug) for slug in dict.fromkeys(options["target"])]
            if options["target"] is not None
            else None
        )
        with service_errors():
            data: dict[str, Any] = {} if options["name"] is None else {"name": options["name"]}
            if not isinstance(expires_at, Keep):
                data["expires_at"] = expires_at
            credential = credential_update(credential=credential, data=data, targets=targets)
        self.emit(options, credential_as_json(credential), "Updated: " + credential_line(credential).strip())


def _expiry(options: dict[str, Any]) -> datetime | Keep | None:
    if options["no_expiry"]:
        return None
    if options["expires_in"] is not None:
        if options["expires_in"] <= 0:
            raise CommandError(
                f"--expires-in must be a positive number of seconds; got {options['expires_in']}."
            )
        return expires_in(options["expires_in"])
    if options["expires_at"]:
        return parse_moment(options["expires_at"], option="--expires-at")
    return KEEP
