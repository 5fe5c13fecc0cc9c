"""``manage.py delete_rule RULE_ID [--json]``: remove an allow-rule (its id is in ``list_rules``); the
route it allowed is denied unless another rule allows it."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, row_by_id, service_errors
from gateway.management.commands._describe import rule_as_json, rule_line
from gateway.services import allow_rule_delete
from policies.models import AllowRule


class Command(GatewayCommand):
    """Delete an allow-rule by id."""

    help = "Delete an allow-rule by its id (see list_rules)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("id", help="Id of the rule.")

    def handle(self, *args: Any, **options: Any) -> None:
        rule = row_by_id(AllowRule.objects.select_related("credential"), options["id"], "rule")
        data, line = {**rule_as_json(rule), "deleted": True}, rule_line(rule)
        with service_errors():
            allow_rule_delete(rule=rule)
        self.emit(options, data, f"Deleted from credential {data['credential_id']}: {line}.")
