"""``manage.py verify_export FILE``: check an audit export against its signed manifest, offline.

Needs no database, only the public key(s): ``--public-key`` (a raw base64url or PEM Ed25519 key, or
the audit-keys JSON), ``--keys-file`` (the JSON of ``/.well-known/audit-keys``) or ``--keys-url``;
without them, this gateway's own configured keys. Exit status 1 naming the first problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.exports.keys import KeysUnreadable, configured_keys, keys_from_file, keys_from_url
from audit.exports.manifest import manifest_path_for
from audit.exports.verify import TrustedKeys, verify_export


class Command(BaseCommand):
    """Verify an audit export file and its manifest with the gateway's public audit key(s)."""

    help = (
        "Check an export (CSV, JSON Lines or PDF) against FILE.manifest.json: the manifest's signature, "
        "each seal's signature and link, every event against its seal's leaves and Merkle root, that no "
        "event of the period is missing, and the file's SHA-256. Exit status 1 naming the first problem."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", metavar="FILE")
        parser.add_argument("--manifest", metavar="FILE", help="Default: FILE.manifest.json.")
        keys = parser.add_mutually_exclusive_group()
        keys.add_argument("--public-key", metavar="FILE", help="An Ed25519 public key (base64url or PEM).")
        keys.add_argument("--keys-file", metavar="FILE", help="A saved /.well-known/audit-keys document.")
        keys.add_argument("--keys-url", metavar="URL", help="The gateway's /.well-known/audit-keys URL.")
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        data = Path(options["file"])
        if not data.is_file():
            raise CommandError(f"{data} is not a file")
        manifest = Path(options["manifest"]) if options["manifest"] else manifest_path_for(data)
        report = verify_export(data_path=data, manifest_path=manifest, keys=_keys(options))
        if options["json"]:
            import json

            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            lines = [f"{data}: {report.events} event(s), {report.seals} seal(s) covered."]
            if report.unsealed:
                lines.append(
                    f"{report.unsealed} event(s) were not sealed when exported: "
                    "only the manifest's signature vouches for them."
                )
            lines += [f"  {problem.kind}: {problem.message}" for problem in report.problems[:50]]
            if len(report.problems) > 50:
                lines.append(f"  ... and {len(report.problems) - 50} more")
            lines.append("OK" if report.ok else f"FAILED: {report.problems[0].message}")
            self.stdout.write("\n".join(lines))
        if not report.ok:
            raise CommandError(f"the export does not verify: {report.problems[0].message}")


def _keys(options: dict[str, Any]) -> TrustedKeys:
    try:
        if options["public_key"]:
            return keys_from_file(Path(options["public_key"]))
        if options["keys_file"]:
            return keys_from_file(Path(options["keys_file"]))
        if options["keys_url"]:
            return keys_from_url(options["keys_url"])
    except KeysUnreadable as error:
        raise CommandError(str(error)) from None
    keys = configured_keys()
    if not keys:
        raise CommandError("no public key: give --public-key, --keys-file or --keys-url")
    return keys
