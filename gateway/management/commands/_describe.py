"""How the list, show and update commands print tenants, credentials, rules and users: one JSON shape
and one text line each, so every command shows a row the same way. Never a secret: a JWT
credential's key source is named, an API key's token exists only when it is issued."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.models import User

from gateway.management.commands.create_credential import key_source
from gateway.models import Credential, Tenant
from policies.models import AllowRule


def when(moment: datetime | None, never: str = "never") -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S %Z}" if moment else never


def tenant_as_json(tenant: Tenant) -> dict[str, Any]:
    """A tenant; with ``target_count`` and ``credential_count`` when the row was annotated with them."""
    data: dict[str, Any] = {"id": tenant.id, "name": tenant.name, "created_at": tenant.created_at}
    for count in ("target_count", "credential_count"):
        if hasattr(tenant, count):
            data[count.replace("_count", "s")] = getattr(tenant, count)
    return data


def credential_as_json(credential: Credential) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": credential.id,
        "name": credential.name,
        "kind": credential.kind,
        "tenant": credential.tenant.name,
        "prefix": credential.prefix,
        "status": credential.status,
        "targets": sorted(target.slug for target in credential.targets.all()),
        "created_at": credential.created_at,
        "expires_at": credential.expires_at,
        "revoked_at": credential.revoked_at,
        "deactivated_at": credential.deactivated_at,
        "last_used_at": credential.last_used_at,
    }
    if credential.is_jwt:
        data["jwt"] = {
            "issuer": credential.jwt_issuer,
            "audience": credential.jwt_audience,
            "subject_claim": credential.jwt_subject_claim,
            "subject": credential.jwt_subject,
            "leeway_seconds": credential.jwt_leeway_seconds,
            "key_source": key_source(credential),
        }
    return data


def credential_line(credential: Credential) -> str:
    targets = ", ".join(sorted(t.slug for t in credential.targets.all())) or "no target"
    expiry = f"expires {when(credential.expires_at)}" if credential.expires_at else "no expiry"
    return (
        f"{credential.id:>5}  {credential.name}  [{credential.kind}, {credential.status}]  "
        f"tenant {credential.tenant.name}  targets: {targets}  {expiry}  "
        f"last used {when(credential.last_used_at)}"
    )


def rule_as_json(rule: AllowRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "credential_id": rule.credential_id,
        "order": rule.order,
        "method": rule.method,
        "path": rule.path,
        "description": rule.description,
    }


def rule_line(rule: AllowRule) -> str:
    described = f"  {rule.description!r}" if rule.description else ""
    return f"rule {rule.id}: {rule.method} {rule.path}{described}"


def user_as_json(user: User) -> dict[str, Any]:
    membership = getattr(user, "tenant_membership", None)
    return {
        "id": user.pk,
        "name": user.username,
        "superuser": user.is_superuser,
        "active": user.is_active,
        "tenant": membership.tenant.name if membership else None,
        "role": membership.role if membership else None,
        "last_login": user.last_login,
    }


def user_line(user: User) -> str:
    data = user_as_json(user)
    if data["superuser"]:
        role = "superuser (every tenant)"
    elif data["role"]:
        role = f"{data['role']} of {data['tenant']}"
    else:
        role = "no tenant role (reaches no tenant)"
    inactive = "" if data["active"] else "  [inactive]"
    return f"{user.username}  {role}  last login {when(user.last_login)}{inactive}"
