"""``manage.py delete_redaction ID [--json]``: remove a redaction policy; every gateway process stops
applying it within a second."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, row_by_id, service_errors
from policies.management.commands._scope import scope_as_json, scope_as_text
from policies.models import RedactionPolicy
from policies.services import redaction_policy_delete


class Command(GatewayCommand):
    """Delete a redaction policy by id."""

    help = "Delete a redaction policy by id (see list_redactions)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("id", help="Id of the redaction policy.")

    def handle(self, *args: Any, **options: Any) -> None:
        rows = RedactionPolicy.objects.select_related("tenant", "target")
        row = row_by_id(rows, options["id"], "redaction policy")
        data = {"id": row.pk, **scope_as_json(row), "detectors": row.detectors, "deleted": True}
        detectors = ", ".join(row.detectors)
        text = f"Deleted redaction policy {row.pk} ({scope_as_text(row)}): {row.action} {detectors}."
        with service_errors():
            redaction_policy_delete(row=row)
        self.emit(options, data, text)
