"""``manage.py create_siem_sink``: stream a tenant's audit events to a syslog collector, an HTTPS
webhook or a JSON Lines file.

A webhook's signing secret is read from ``--secret-file FILE`` or, without it, from standard input
(prompted for on a terminal); it is stored encrypted and never printed. The sink receives the events
written from now on; ``--from-start`` sends every event of the tenant still kept first.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from audit.management.commands._siem import settings_json, webhook_secret
from audit.models import SiemSink
from audit.siem.selectors import siem_sink_summary
from audit.siem.services import siem_sink_create
from gateway.management.commands._cli import GatewayCommand, service_errors, tenant_by_name

# option -> settings key, for the options that set one
_SETTINGS = {
    "url": "url",
    "host": "host",
    "port": "port",
    "tls": "tls",
    "ca_file": "ca_file",
    "facility": "facility",
    "app_name": "app_name",
    "path": "path",
    "fsync": "fsync",
    "max_bytes": "max_bytes",
    "backups": "backups",
    "batch_size": "batch_size",
    "timeout": "timeout_seconds",
    "retry_initial": "retry_initial_seconds",
    "retry_max": "retry_max_seconds",
}


class Command(GatewayCommand):
    """Create a SIEM sink for a tenant and print it (never its secret)."""

    help = "Stream a tenant's audit events to syslog (RFC 5424, TCP/TLS), an HTTPS webhook or a JSONL file."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--tenant", required=True, help="Name of the tenant whose events are sent.")
        parser.add_argument("--kind", required=True, choices=SiemSink.Kind.values)
        parser.add_argument("--name", help="The sink's name, unique in the tenant (default: the kind).")
        parser.add_argument("--url", help="webhook: the https:// URL batches are POSTed to.")
        parser.add_argument(
            "--secret-file", metavar="FILE", help="webhook: the signing secret from FILE (- or none: stdin)."
        )
        parser.add_argument("--host", help="syslog: the collector's host.")
        parser.add_argument("--port", type=int, help="syslog: its port (default 6514 with TLS, else 601).")
        parser.add_argument(
            "--tls", action="store_const", const=True, default=None, help="syslog: TLS (the default)."
        )
        parser.add_argument(
            "--no-tls", dest="tls", action="store_const", const=False, help="syslog: plain TCP instead."
        )
        parser.add_argument("--ca-file", help="syslog, webhook: PEM file of the CA that verifies the peer.")
        parser.add_argument("--facility", type=int, help="syslog: facility 0-23 (default 13, log audit).")
        parser.add_argument("--app-name", help="syslog: APP-NAME (default mcp-gateway).")
        parser.add_argument("--path", help="file: name of the file inside GATEWAY_SIEM_FILE_DIR.")
        parser.add_argument("--fsync", choices=["batch", "never"], help="file: fsync after each batch?")
        parser.add_argument("--max-bytes", type=int, help="file: rotate past this size (0: never).")
        parser.add_argument("--backups", type=int, help="file: rotated files kept (default 5).")
        parser.add_argument("--batch-size", type=int, help="Events per delivery (default 500).")
        parser.add_argument("--timeout", type=float, metavar="SECONDS", help="Per network phase (10).")
        parser.add_argument("--retry-initial", type=float, metavar="SECONDS", help="First backoff (1).")
        parser.add_argument("--retry-max", type=float, metavar="SECONDS", help="Longest backoff (300).")
        parser.add_argument("--sink-settings", metavar="JSON", help="More settings, as a JSON object.")
        parser.add_argument("--disabled", action="store_true", help="Create it switched off.")
        parser.add_argument(
            "--from-start", action="store_true", help="Send the tenant's kept events first, then new ones."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_by_name(options["tenant"])
        kind = options["kind"]
        settings = settings_json(options["sink_settings"])
        settings.update({key: options[name] for name, key in _SETTINGS.items() if options[name] is not None})
        secret = webhook_secret(options["secret_file"]) if kind == SiemSink.Kind.WEBHOOK else ""
        with service_errors():
            sink = siem_sink_create(
                tenant=tenant,
                name=options["name"] or kind,
                kind=kind,
                settings=settings,
                secret=secret,
                enabled=not options["disabled"],
                from_start=options["from_start"],
            )
        summary = siem_sink_summary(sink, getattr(sink, "state", None))
        self.emit(
            options, summary, f"Created {kind} sink {sink.name!r} (id {sink.pk}) of tenant {tenant.name!r}."
        )
