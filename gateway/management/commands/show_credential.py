"""``manage.py show_credential ID [--json]``: a credential, its allow-rules in order and its meters.

Never its token (shown once, when issued) nor a JWT credential's secret: its key source is named.
``check_access --credential ID`` says what it may reach, and why.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, credential_by_id
from gateway.management.commands._describe import (
    credential_as_json,
    credential_line,
    rule_as_json,
    rule_line,
)
from metering.management.commands._meters import meter_as_json, meter_line
from metering.selectors import meter_list


class Command(GatewayCommand):
    """Show one credential with its rules and meters."""

    help = "Show a credential: status, targets, expiry, allow-rules in order and its own meters."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("id", help="Id of the credential.")

    def handle(self, *args: Any, **options: Any) -> None:
        credential = credential_by_id(options["id"])
        rules = list(credential.rules.order_by("order", "id"))
        meters = list(meter_list(credential=credential))
        data = {
            **credential_as_json(credential),
            "rules": [rule_as_json(rule) for rule in rules],
            "meters": [meter_as_json(meter) for meter in meters],
        }
        lines = [
            credential_line(credential).strip(),
            f"Rules, first match decides ({len(rules)}; none: every call is denied):",
            *(f"  {rule_line(rule)}" for rule in rules),
            f"Its own meters ({len(meters)}; the target's and tenant's apply too):",
            *(f"  {meter_line(meter)}" for meter in meters),
        ]
        self.emit(options, data, "\n".join(lines))
