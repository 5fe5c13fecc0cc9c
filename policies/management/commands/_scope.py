"""The scope options shared by ``create_filter`` and ``set_redaction``: a tenant, narrowed to one of
its targets or one of its credentials, and a route glob."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from gateway.management.commands._cli import scope_from
from policies.models import ProtectionScope

__all__ = ["add_scope_arguments", "scope_as_json", "scope_as_text", "scope_from"]


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
