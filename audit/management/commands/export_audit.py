"""``manage.py export_audit``: a tenant's audit events of a period as CSV, JSON Lines or a PDF summary,
with the signed manifest beside the file (``FILE.manifest.json``; see audit/exports/manifest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from audit.exports.formats import FORMATS
from audit.exports.services import audit_export_write
from gateway.management.commands._cli import GatewayCommand, parse_moment, service_errors, tenant_by_name


class Command(GatewayCommand):
    """Export one tenant's audit events for a period, signed, for an auditor."""

    help = (
        "Write a tenant's audit events with SINCE <= time < UNTIL to FILE as CSV, JSON Lines or a PDF "
        "summary, and FILE.manifest.json: the file's SHA-256, the seals covering the events and the "
        "gateway's signature (check both with verify_export)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--tenant", metavar="NAME", required=True)
        parser.add_argument("--since", metavar="ISO", required=True, help="First moment (UTC unless given).")
        parser.add_argument("--until", metavar="ISO", required=True, help="End, excluded (UTC unless given).")
        parser.add_argument("--format", choices=FORMATS, required=True)
        parser.add_argument("--output", metavar="FILE", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_by_name(options["tenant"])
        since = parse_moment(options["since"], option="--since")
        until = parse_moment(options["until"], option="--until")
        output = Path(options["output"])
        if not output.parent.is_dir():
            raise CommandError(f"--output: directory {str(output.parent)!r} does not exist")
        with service_errors():
            try:
                result = audit_export_write(
                    tenant=tenant, since=since, until=until, format=options["format"], output=output
                )
            except OSError as error:
                raise CommandError(f"cannot write {output}: {error.strerror}") from None
        lines = [
            f"Wrote {result.events} event(s) of {tenant.name} to {result.path} ({result.bytes} bytes, "
            f"SHA-256 {result.sha256}).",
            f"Manifest: {result.manifest_path} ({result.seals} seal(s) covered, signed).",
        ]
        if result.unsealed:
            lines.append(
                f"{result.unsealed} event(s) are not sealed yet: only the manifest's signature vouches "
                "for them (export again after the next seal for a seal's proof)."
            )
        if result.missing:
            lines.append(
                f"WARNING: {result.missing} event(s) of the covered seals are no longer in the database: "
                "verify_export will report them (run verify_audit)."
            )
        self.emit(options, {**result.as_dict(), "tenant": tenant.name}, "\n".join(lines))
