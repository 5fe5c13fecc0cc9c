"""Validation of filter and redaction rows, shared by the models' ``clean()`` and the services.

Each function returns the messages that explain what is wrong (the parsers' own words), or an
empty list; the model turns them into a ``ValidationError``. Stated once here so the admin, the CLI
and the services refuse the same things with the same messages.
"""

from __future__ import annotations

from typing import Any

from metering.compiler import parse_route
from policies.content import compile_json_path
from policies.redaction import resolve_detectors


def scope_errors(
    *,
    tenant_id: int | None,
    target_tenant_id: int | None,
    credential_tenant_id: int | None,
    has_target: bool,
    has_credential: bool,
    route: str,
) -> dict[str, list[str]]:
    """Errors by field for a scope: one tenant, at most one of target and credential, same tenant."""
    errors: dict[str, list[str]] = {}
    if has_target and has_credential:
        errors["__all__"] = ["Scope it to a target or to a credential, not both."]
    if target_tenant_id is not None and target_tenant_id != tenant_id:
        errors["target"] = ["The target belongs to another tenant."]
    if credential_tenant_id is not None and credential_tenant_id != tenant_id:
        errors["credential"] = ["The credential belongs to another tenant."]
    try:
        parse_route(route or "")
    except ValueError as exc:
        errors["route"] = [str(exc)]
    return errors


def path_errors(paths: Any) -> list[str]:
    """Errors for a filter's JSON paths: a non-empty list of strings, each one parsed."""
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
        return ['A filter needs a list of one or more JSON path strings, e.g. ["$..id"].']
    errors: list[str] = []
    for path in paths:
        try:
            compile_json_path(path)
        except ValueError as exc:
            errors.append(str(exc))
    return errors


def detector_errors(names: Any) -> list[str]:
    """Errors for a redaction policy's detector names (the registry's message names the valid ones)."""
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return ['Detectors must be a list of detector names, e.g. ["email", "card"].']
    try:
        resolve_detectors(names)
    except ValueError as exc:
        return [str(exc)]
    return []
