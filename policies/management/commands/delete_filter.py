"""``manage.py delete_filter ID [--json]``: remove a response filter; every gateway process stops
applying it within a second."""

from __future__ import annotations

from typing import Any

from policies.management.commands._scope import ProtectionDeleteCommand
from policies.models import Filter
from policies.services import filter_delete


class Command(ProtectionDeleteCommand):
    """Delete a filter by id."""

    help = "Delete a response filter by id (see list_filters)."
    model, what = Filter, "filter"

    def delete(self, row: Filter) -> None:
        filter_delete(row=row)

    def described(self, row: Filter) -> tuple[dict[str, Any], str]:
        return {"paths": row.paths}, ", ".join(row.paths)
