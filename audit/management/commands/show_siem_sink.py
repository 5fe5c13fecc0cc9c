"""``manage.py show_siem_sink ID [--json]``: one SIEM sink, its settings and where its delivery stands
(never its secret: only whether one is set)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from audit.management.commands._siem import sink_by_id, sink_summary, sink_text
from gateway.management.commands._cli import GatewayCommand


class Command(GatewayCommand):
    """Show one SIEM sink by the id list_siem_sinks prints."""

    help = "Show a SIEM sink: kind, settings, whether a secret is set, cursor, backlog, failures, last error."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("id", help="Id of the sink (list_siem_sinks).")

    def handle(self, *args: Any, **options: Any) -> None:
        summary = sink_summary(sink_by_id(options["id"]))
        self.emit(options, summary, sink_text(summary))
