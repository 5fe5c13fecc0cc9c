"""``manage.py verify_audit``: recompute every audit seal and name the first thing tampered with.

Exit status 1 when any chain fails; every run is recorded (the admin shows the last one per tenant).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from audit.services import audit_verify
from gateway.management.commands._cli import GatewayCommand, parse_moment, tenant_by_name
from gateway.models import Tenant


class Command(GatewayCommand):
    """Verify the sealed audit trail of one tenant, or of every tenant."""

    help = (
        "Recompute every audit seal (Merkle root, chain link, Ed25519 signature) and name the first "
        "event edited, deleted, inserted or moved. Exit status 1 when anything fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--tenant", metavar="NAME", help="Only this tenant's chain.")
        parser.add_argument(
            "--since", metavar="ISO", help="Only seals made since this date or time (UTC unless given)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_by_name(options["tenant"]) if options["tenant"] else None
        since = parse_moment(options["since"], option="--since") if options["since"] else None
        reports = audit_verify(tenant_id=tenant.id if tenant else None, since=since)
        names = dict(Tenant.objects.filter(id__in=[r.tenant_id for r in reports]).values_list("id", "name"))
        lines = []
        for report in reports:
            name = names.get(report.tenant_id) or _unnamed(report.tenant_id)
            result = "OK" if report.ok else f"FAILED: {report.problems[0].message}"
            checked = f"{report.seals_checked} seal(s), {report.events_checked} event(s)"
            if report.pruned_seals:
                checked += f" ({report.retention_note()})"
            lines.append(f"{name}: {checked}: {result}")
            lines.extend(f"  {problem.kind}: {problem.message}" for problem in report.problems[1:20])
        data = {
            "ok": all(report.ok for report in reports),
            "chains": [{**report.as_dict(), "tenant": names.get(report.tenant_id)} for report in reports],
        }
        self.emit(options, data, "\n".join(lines) or "Nothing sealed yet.")
        if not data["ok"]:
            raise CommandError("the audit trail does not verify")


def _unnamed(tenant_id: int | None) -> str:
    return "(no tenant)" if tenant_id is None else f"tenant #{tenant_id} (deleted)"
