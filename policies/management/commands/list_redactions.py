"""``manage.py list_redactions [--tenant T] [--json]``: the redaction policies, in the order they stack."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, listing_filters
from policies.management.commands._scope import scope_as_json, scope_as_text
from policies.selectors import redaction_policy_list


class Command(GatewayCommand):
    """List redaction policies: the tenant's, then the targets', then the credentials'."""

    help = "List the redaction policies in stack order."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--tenant", metavar="NAME", help="Only this tenant's policies.")

    def handle(self, *args: Any, **options: Any) -> None:
        rows = list(redaction_policy_list(**listing_filters(options)))
        data = {
            "redaction_policies": [
                {"id": row.pk, **scope_as_json(row), "detectors": row.detectors, "action": row.action}
                for row in rows
            ]
        }
        lines = [
            f"redaction {row.pk} ({scope_as_text(row)}): {row.action} {', '.join(row.detectors)} [{row.mode}]"
            for row in rows
        ]
        self.emit(options, data, "\n".join(lines) or "No redaction policy.")
