"""``manage.py add_rule --credential ID 'METHOD /glob' [--description D] [--json]``: allow one more
route to a credential, matched after its existing rules. Every gateway process applies it within a
second."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, credential_by_id, parse_route, service_errors
from gateway.management.commands._describe import rule_as_json, rule_line
from gateway.services import allow_rule_create


class Command(GatewayCommand):
    """Add an allow-rule at the end of a credential's rules."""

    help = "Allow a route ('METHOD /glob', e.g. 'POST /tools/*') to a credential."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--credential", required=True, metavar="ID", help="Id of the credential.")
        parser.add_argument("route", metavar="'METHOD /glob'", help="e.g. 'POST /tools/search'.")
        parser.add_argument("--description", default="", help="Why the route is allowed.")

    def handle(self, *args: Any, **options: Any) -> None:
        method, path = parse_route(options["route"], option="The route")
        credential = credential_by_id(options["credential"])
        last = credential.rules.order_by("-order").values_list("order", flat=True).first()
        with service_errors():
            rule = allow_rule_create(
                credential=credential,
                method=method,
                path=path,
                description=options["description"],
                order=0 if last is None else last + 1,
            )
        text = f"Added to credential {credential.id} {credential.name!r}: {rule_line(rule)}."
        self.emit(options, rule_as_json(rule), text)
