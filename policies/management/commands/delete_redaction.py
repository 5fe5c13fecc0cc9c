"""``manage.py delete_redaction ID [--json]``: remove a redaction policy; every gateway process stops
applying it within a second."""

from __future__ import annotations

from typing import Any

from policies.management.commands._scope import ProtectionDeleteCommand
from policies.models import RedactionPolicy
from policies.services import redaction_policy_delete


class Command(ProtectionDeleteCommand):
    """Delete a redaction policy by id."""

    help = "Delete a redaction policy by id (see list_redactions)."
    model, what = RedactionPolicy, "redaction policy"

    def delete(self, row: RedactionPolicy) -> None:
        redaction_policy_delete(row=row)

    def described(self, row: RedactionPolicy) -> tuple[dict[str, Any], str]:
        return {"detectors": row.detectors}, f"{row.action} {', '.join(row.detectors)}"
