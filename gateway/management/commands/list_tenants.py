"""``manage.py list_tenants [--json]``: every tenant, with how many targets and credentials it has."""

from __future__ import annotations

from typing import Any

from gateway.management.commands._cli import GatewayCommand
from gateway.management.commands._describe import tenant_as_json
from gateway.selectors import tenant_list


class Command(GatewayCommand):
    """List the tenants by name."""

    help = "List the tenants, with their number of targets and (not deactivated) credentials."

    def handle(self, *args: Any, **options: Any) -> None:
        tenants = list(tenant_list())
        lines = [
            f"{t.id:>5}  {t.name}  {t.target_count} target(s), {t.credential_count} credential(s)"  # type: ignore[attr-defined]
            for t in tenants
        ]
        self.emit(
            options, {"tenants": [tenant_as_json(t) for t in tenants]}, "\n".join(lines) or "No tenant."
        )
