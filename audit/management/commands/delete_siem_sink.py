"""``manage.py delete_siem_sink ID [--json]``: stop streaming to a SIEM sink and delete it, with where
its delivery stood. The audit events stay; retention no longer waits for the sink."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from audit.management.commands._siem import sink_by_id
from audit.siem.services import siem_sink_delete
from gateway.management.commands._cli import GatewayCommand, service_errors


class Command(GatewayCommand):
    """Delete a SIEM sink by id."""

    help = "Delete a SIEM sink (its delivery state too; the audit events stay)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("id", help="Id of the sink (list_siem_sinks).")

    def handle(self, *args: Any, **options: Any) -> None:
        sink = sink_by_id(options["id"])
        data = {"id": sink.pk, "name": sink.name, "tenant": sink.tenant.name, "deleted": True}
        with service_errors():
            siem_sink_delete(sink=sink)
        self.emit(options, data, f"Deleted SIEM sink {data['name']!r} of tenant {data['tenant']!r}.")
