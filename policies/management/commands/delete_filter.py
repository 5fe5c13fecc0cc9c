"""``manage.py delete_filter ID [--json]``: remove a response filter; every gateway process stops
applying it within a second."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, row_by_id, service_errors
from policies.management.commands._scope import scope_as_json, scope_as_text
from policies.models import Filter
from policies.services import filter_delete


class Command(GatewayCommand):
    """Delete a filter by id."""

    help = "Delete a response filter by id (see list_filters)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("id", help="Id of the filter.")

    def handle(self, *args: Any, **options: Any) -> None:
        row = row_by_id(Filter.objects.select_related("tenant", "target"), options["id"], "filter")
        data = {"id": row.pk, **scope_as_json(row), "paths": row.paths, "deleted": True}
        text = f"Deleted filter {row.pk} ({scope_as_text(row)}): {', '.join(row.paths)}."
        with service_errors():
            filter_delete(row=row)
        self.emit(options, data, text)
