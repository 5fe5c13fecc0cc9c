"""What the filter and redaction commands share: the scope options of ``create_filter`` and
``set_redaction`` (a tenant, narrowed to one of its targets or one of its credentials, and a route
glob), how a scoped row is shown, and the command that deletes one by id."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import GatewayCommand, row_by_id, scope_from, service_errors
from policies.models import ProtectionScope

__all__ = ["ProtectionDeleteCommand", "add_scope_arguments", "scope_as_json", "scope_as_text", "scope_from"]


def add_scope_arguments(parser: CommandParser) -> None:
    parser.add_argument("--tenant", required=True, help="Name of the tenant.")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--target", metavar="SLUG", help="Only the calls to this target of the tenant.")
    where.add_argument("--credential", metavar="ID", help="Only the calls of this credential of the tenant.")
    parser.add_argument(
        "--route", default="", metavar="'METHOD /glob'", help="Only matching calls, e.g. 'POST /tools/*'."
    )
    parser.add_argument("--mode", choices=ProtectionScope.Mode.values, default=ProtectionScope.Mode.ENFORCE)


def scope_as_json(row: ProtectionScope) -> dict[str, Any]:
    return {
        "tenant": row.tenant.name,
        "target": row.target.slug if row.target else None,
        "credential_id": row.credential_id,
        "route": row.route,
        "mode": row.mode,
        "order": row.order,
    }


def scope_as_text(row: ProtectionScope) -> str:
    if row.credential_id is not None:
        where = f"credential {row.credential_id}"
    elif row.target is not None:
        where = f"target {row.target.slug}"
    else:
        where = f"tenant {row.tenant.name}"
    return where + (f", calls matching {row.route}" if row.route else "")


class ProtectionDeleteCommand(GatewayCommand):
    """A command that deletes one filter or redaction policy by id and says what it was.

    Subclasses name the model and what an operator calls its rows (``what``: "filter"), and give the
    service that deletes a row and what is shown of a row besides its scope (``described``)."""

    model: type[ProtectionScope]
    what: str

    def delete(self, row: Any) -> None:
        raise NotImplementedError

    def described(self, row: Any) -> tuple[dict[str, Any], str]:
        """What the row holds (JSON fields beside the scope's) and the same as text."""
        raise NotImplementedError

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("id", help=f"Id of the {self.what}.")

    def handle(self, *args: Any, **options: Any) -> None:
        rows = self.model._default_manager.select_related("tenant", "target")
        row = row_by_id(rows, options["id"], self.what)
        fields, held = self.described(row)
        # Described before the delete, which leaves the row without its id.
        data = {"id": row.pk, **scope_as_json(row), **fields, "deleted": True}
        text = f"Deleted {self.what} {row.pk} ({scope_as_text(row)}): {held}."
        with service_errors():
            self.delete(row)
        self.emit(options, data, text)
