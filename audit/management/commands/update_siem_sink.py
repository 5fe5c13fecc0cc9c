"""``manage.py update_siem_sink ID``: rename a SIEM sink, switch it on or off, change its settings or
replace a webhook's secret; what is not given stays, and so does where its delivery stands.

``--sink-settings JSON`` merges its keys into the current settings (a key given as ``null`` is
removed, so its default applies). ``--secret-file FILE`` (``-``: standard input) replaces the
webhook's signing secret; it is never printed. ``--retry-now`` skips a failing sink's backoff.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from audit.management.commands._siem import settings_json, sink_by_id, sink_summary, sink_text
from audit.siem.services import siem_sink_reset_backoff, siem_sink_update
from gateway.management.commands._cli import GatewayCommand, read_secret, service_errors


class Command(GatewayCommand):
    """Change a SIEM sink by id; what is not given stays."""

    help = "Change a SIEM sink: --name, --enable/--disable, --sink-settings JSON (merged), --secret-file."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("id", help="Id of the sink (list_siem_sinks).")
        parser.add_argument("--name", help="A new name, unique in the tenant.")
        switch = parser.add_mutually_exclusive_group()
        switch.add_argument(
            "--enable", dest="enabled", action="store_const", const=True, default=None, help="Switch it on."
        )
        switch.add_argument(
            "--disable", dest="enabled", action="store_const", const=False, help="Switch it off."
        )
        parser.add_argument(
            "--sink-settings",
            metavar="JSON",
            help="Merged into the current settings, e.g. '{\"batch_size\": 100}'; null removes a key.",
        )
        parser.add_argument(
            "--secret-file", metavar="FILE", help="webhook: a new signing secret from FILE (- for stdin)."
        )
        parser.add_argument("--retry-now", action="store_true", help="Skip the backoff of a failing sink.")

    def handle(self, *args: Any, **options: Any) -> None:
        sink = sink_by_id(options["id"])
        settings = None
        if options["sink_settings"] is not None:
            settings = {**sink.settings, **settings_json(options["sink_settings"])}
            settings = {key: value for key, value in settings.items() if value is not None}
        secret = read_secret(options["secret_file"], "--secret-file") if options["secret_file"] else None
        with service_errors():
            siem_sink_update(
                sink=sink, name=options["name"], settings=settings, enabled=options["enabled"], secret=secret
            )
        if options["retry_now"]:
            siem_sink_reset_backoff(sink=sink)
        summary = sink_summary(sink_by_id(str(sink.pk)))
        self.emit(options, summary, sink_text(summary))
