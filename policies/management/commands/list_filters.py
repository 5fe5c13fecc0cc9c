"""``manage.py list_filters [--tenant T] [--json]``: the response filters, in the order they stack."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, listing_filters
from policies.management.commands._scope import scope_as_json, scope_as_text
from policies.selectors import filter_list


class Command(GatewayCommand):
    """List filters: the tenant's, then the targets', then the credentials', each in order."""

    help = "List the response filters in stack order."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--tenant", metavar="NAME", help="Only this tenant's filters.")

    def handle(self, *args: Any, **options: Any) -> None:
        rows = list(filter_list(**listing_filters(options)))
        data = {"filters": [{"id": row.pk, **scope_as_json(row), "paths": row.paths} for row in rows]}
        lines = [
            f"filter {row.pk} ({scope_as_text(row)}): {', '.join(row.paths)} [{row.mode}]" for row in rows
        ]
        self.emit(options, data, "\n".join(lines) or "No filter.")
