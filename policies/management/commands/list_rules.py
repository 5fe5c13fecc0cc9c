"""``manage.py list_rules --credential ID [--json]``: a credential's allow-rules, in the order they
are matched (the first match decides; no match is a denial)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, credential_by_id
from gateway.management.commands._describe import rule_as_json, rule_line


class Command(GatewayCommand):
    """List one credential's allow-rules in order."""

    help = "List a credential's allow-rules in the order they are matched."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--credential", required=True, metavar="ID", help="Id of the credential.")

    def handle(self, *args: Any, **options: Any) -> None:
        credential = credential_by_id(options["credential"])
        rules = list(credential.rules.order_by("order", "id"))
        data = {"credential_id": credential.id, "rules": [rule_as_json(rule) for rule in rules]}
        text = "\n".join(rule_line(rule) for rule in rules) or (
            f"Credential {credential.id} has no rule: every call is denied."
        )
        self.emit(options, data, text)
