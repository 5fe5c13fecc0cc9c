"""Reads of policy configuration, compiled for the proxy (sync; the cache runs them in a thread)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from django.conf import settings
from django.db.models import F, Q, QuerySet

from gateway.crypto import decrypt_secret
from gateway.egress import egress_policy
from gateway.jwt_keys import HS256, load_public_key
from gateway.models import Credential, Target, Tenant
from policies.compiler import (
    CompiledCredential,
    CompiledJwt,
    CompiledTarget,
    CompiledTool,
    ScopedFilter,
    ScopedRedactor,
    compile_route_scope,
    compile_rule,
)
from policies.content import compile_filter
from policies.models import Filter, PinnedTool, PolicyVersion, RedactionPolicy
from policies.protect import select_for_call, union
from policies.redaction import Redactor, resolve_detectors
from policies.tools import ToolDefinitionError, input_validator

ScopeRow = TypeVar("ScopeRow", Filter, RedactionPolicy)


def compiled_credential_get(*, prefix: str) -> CompiledCredential | None:
    """Load and compile the credential with token prefix ``prefix`` (five queries), or None."""
    credential = Credential.objects.filter(prefix=prefix).prefetch_related("rules", "targets").first()
    if credential is None:
        return None
    return compile_credential(credential)


def credential_prefixes_get() -> frozenset[str]:
    """The token prefix of every credential that exists, revoked and deactivated ones included (one query).

    The proxy refuses a token whose prefix is not in this set without another query.
    """
    return frozenset(Credential.objects.values_list("prefix", flat=True))


@dataclass(frozen=True, slots=True)
class JwtDirectory:
    """Which JWT credential a token names, by its (unverified) issuer and subject claim.

    ``issuers`` maps each configured issuer to its subject claims, each with the subjects it names and
    their credentials' prefixes. Loaded once per configuration version, so a JWT of an unknown issuer
    is refused from memory.
    """

    issuers: Mapping[str, tuple[tuple[str, Mapping[str, str]], ...]]

    def candidates(self, issuer: str, claims: Mapping[str, object]) -> list[str] | None:
        """The prefixes of the credentials whose subject the claims name; None for an unknown issuer."""
        by_claim = self.issuers.get(issuer)
        if by_claim is None:
            return None
        found = []
        for claim, subjects in by_claim:
            value = claims.get(claim)
            if isinstance(value, str) and value in subjects:
                found.append(subjects[value])
        return found


def jwt_directory_get() -> JwtDirectory:
    """Every JWT credential's issuer, subject claim, subject and prefix (one query).

    Revoked and deactivated credentials are included, so their tokens are refused for that reason;
    where a deactivated credential and a live one share an issuer and subject, the live one wins.
    """
    rows = (
        Credential.objects.filter(kind=Credential.Kind.JWT)
        .order_by(F("deactivated_at").desc(nulls_first=True), "-pk")
        .values_list("jwt_issuer", "jwt_subject_claim", "jwt_subject", "prefix")
    )
    nested: dict[str, dict[str, dict[str, str]]] = {}
    for issuer, claim, subject, prefix in rows:
        nested.setdefault(issuer, {}).setdefault(claim, {}).setdefault(subject, prefix)
    return JwtDirectory(
        issuers={issuer: tuple(by_claim.items()) for issuer, by_claim in nested.items()},
    )


def compile_jwt(credential: Credential) -> CompiledJwt | None:
    """A JWT credential's verification settings, its HS256 secret decrypted or public key parsed."""
    if not credential.is_jwt:
        return None
    algorithm = ""
    key_object: object = None
    if credential.jwt_hs256_secret_encrypted:
        algorithm, key_object = HS256, decrypt_secret(credential.jwt_hs256_secret_encrypted).encode()
    elif credential.jwt_public_key:
        key_object, algorithm = load_public_key(credential.jwt_public_key)
    return CompiledJwt(
        issuer=credential.jwt_issuer,
        audience=credential.jwt_audience,
        subject_claim=credential.jwt_subject_claim,
        subject=credential.jwt_subject,
        leeway_seconds=credential.jwt_leeway_seconds,
        algorithm=algorithm,
        key=key_object,
        jwks_url="" if key_object is not None else credential.jwt_jwks_url,
    )


def compile_credential(credential: Credential) -> CompiledCredential:
    """Compile a credential (with its rules, targets, filters and redaction policies) into its frozen form."""
    target_ids = frozenset(t.id for t in credential.targets.all())
    scope = _applying_to(credential, target_ids)
    rules = tuple(
        compile_rule(rule_id=rule.id, method=rule.method, path=rule.path, description=rule.description)
        for rule in sorted(credential.rules.all(), key=lambda r: (r.order, r.id))
    )
    return CompiledCredential(
        id=credential.id,
        tenant_id=credential.tenant_id,
        name=credential.name,
        prefix=credential.prefix,
        secret_hash=credential.secret_hash,
        expires_at=credential.expires_at,
        # Deactivation revokes too; checked on its own so a cleared revoked_at cannot revive it.
        revoked=credential.revoked_at is not None or credential.deactivated_at is not None,
        target_ids=target_ids,
        rules=rules,
        filters=tuple(
            _compile_filter(row)
            for row in _stacked(Filter.objects.filter(scope).order_by())  # one query
        ),
        redactors=tuple(
            _compile_redactor(row)
            for row in _stacked(RedactionPolicy.objects.filter(scope).order_by())  # one query
        ),
        jwt=compile_jwt(credential),
    )


def _applying_to(credential: Credential, target_ids: frozenset[int]) -> Q:
    """The protection rows that apply to ``credential``: its tenant's, its targets' and its own."""
    return Q(tenant_id=credential.tenant_id) & (
        Q(target__isnull=True, credential__isnull=True)
        | Q(target_id__in=target_ids)
        | Q(credential_id=credential.id)
    )


def _stacked(rows: Iterable[ScopeRow]) -> list[ScopeRow]:
    """Tenant-wide rows first, then the targets', then the credential's own, each in order."""
    return sorted(rows, key=lambda r: (r.credential_id is not None, r.target_id is not None, r.order, r.pk))


def _compile_filter(row: Filter) -> ScopedFilter:
    compiled = compile_filter(filter_id=row.id, paths=row.paths, mode=row.mode, route=row.route or None)
    return ScopedFilter(target_id=row.target_id, route=compile_route_scope(row.route), filter=compiled)


def _compile_redactor(row: RedactionPolicy) -> ScopedRedactor:
    redactor = Redactor(
        detectors=resolve_detectors(row.detectors),
        action=row.action,  # type: ignore[arg-type]
        mode=row.mode,  # type: ignore[arg-type]
        key=pseudonym_key(row.tenant_id),
    )
    return ScopedRedactor(
        id=row.id, target_id=row.target_id, route=compile_route_scope(row.route), redactor=redactor
    )


def pseudonym_key(tenant_id: int) -> bytes:
    """The tenant's pseudonym key: HMAC-SHA256 of the tenant id under SECRET_KEY.

    Pseudonyms are stable within a tenant (the same e-mail gives the same token in every call, so an
    agent can still join records) and differ between tenants, and no key is stored: rotating
    SECRET_KEY changes every pseudonym.
    """
    message = f"gateway:redaction-pseudonym:{tenant_id}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).digest()


def compiled_target_get(*, slug: str) -> CompiledTarget | None:
    """Load and compile the target reached at ``/mcp/<slug>/`` and its pinned tools (two queries), or None."""
    target = Target.objects.filter(slug=slug).first()
    if target is None:
        return None
    return compile_target(target)


def compile_target(target: Target) -> CompiledTarget:
    """Compile a target, decrypting its upstream secret into the header to inject, with its pinned tools
    (each approved tool's input schema compiled once, here)."""
    headers: tuple[tuple[str, str], ...] = ()
    if target.auth_type != Target.AuthType.NONE and target.auth_secret_encrypted:
        secret = decrypt_secret(target.auth_secret_encrypted)
        if target.auth_type == Target.AuthType.BEARER:
            headers = (("authorization", f"Bearer {secret}"),)
        else:
            headers = ((target.auth_header_name.strip().lower(), secret),)
    return CompiledTarget(
        id=target.id,
        tenant_id=target.tenant_id,
        slug=target.slug,
        kind=target.kind,
        upstream_url=target.upstream_url,
        upstream_headers=headers,
        timeout_seconds=target.timeout_seconds,
        allowed_origins=frozenset(target.allowed_origin_list()),
        upstream_refused=egress_policy().literal_refusal(target.upstream_url) or "",
        tools={pin.name: compile_pinned_tool(pin) for pin in PinnedTool.objects.filter(target=target)},
        hold_new_tools=target.hold_new_tools,
        validate_arguments=target.validate_arguments,
    )


def compile_pinned_tool(pin: PinnedTool) -> CompiledTool:
    """The pinned tool in its frozen form, the approved definition's input schema compiled."""
    try:
        approved = pin.approved_tool()
    except ToolDefinitionError:  # stored by this gateway, so only a hand-edited row gets here
        approved = None
    validator = input_validator(approved) if approved is not None else None
    return CompiledTool(
        name=pin.name,
        state=pin.state,
        approved_hash=pin.approved_hash,
        served_hash=pin.served_hash,
        validator=validator,
    )


def policy_version_get() -> int:
    """The current configuration version (0 before any change)."""
    row = PolicyVersion.objects.filter(pk=1).values_list("version", flat=True).first()
    return row or 0


@dataclass(frozen=True)
class RouteProtections:
    """The filters and redaction policies the proxy would apply to one call, in stack order, described
    for an admin (``check_access``). ``target`` is the slug they were picked for, or None: then only
    the target-independent ones are listed and ``depending_on_target`` counts the others that apply
    to this route on some of the credential's targets."""

    target: str | None
    filters: tuple[dict[str, object], ...]
    redactions: tuple[dict[str, object], ...]
    depending_on_target: dict[str, int]

    def as_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "filters": list(self.filters),
            "redactions": list(self.redactions),
            "depending_on_target": self.depending_on_target,
        }

    def as_lines(self) -> list[str]:
        lines = [f"filter {f['id']} ({_where(f)}): {_listed(f['paths'])} [{f['mode']}]" for f in self.filters]
        lines += [
            f"redaction {r['id']} ({_where(r)}): {_listed(r['detectors'])} -> {r['action']} [{r['mode']}]"
            for r in self.redactions
        ]
        if not lines:
            lines.append("no filter or redaction applies")
        filters, redactions = self.depending_on_target["filters"], self.depending_on_target["redactions"]
        if filters or redactions:
            lines.append(
                f"and, depending on the target, {_count(filters, 'filter')} and "
                f"{_count(redactions, 'redaction policy', 'redaction policies')} scoped to targets: "
                "pass --target to see them"
            )
        return lines


def route_protections_get(
    *, credential: CompiledCredential, target: CompiledTarget | None, method: str, path: str
) -> RouteProtections:
    """What the proxy's ``select_for_call`` picks for ``method path`` (the route as the proxy judges
    it), described from the saved rows: scope, route, paths or detectors (``all`` expanded), mode."""
    call = select_for_call(credential, target.id if target else None, method, path, "")
    filters = call.filters if call else ()
    redactors = call.redactors if call else ()
    depending = {"filters": 0, "redactions": 0}
    if target is None:
        shown_f, shown_r = {f.id for f in filters}, {r.id for r in redactors}
        others = [select_for_call(credential, tid, method, path, "") for tid in sorted(credential.target_ids)]
        anywhere = union(c for c in others if c is not None)
        depending["filters"] = len({f.id for f in anywhere.filters} - shown_f)
        depending["redactions"] = len({r.id for r in anywhere.redactors} - shown_r)
    filter_rows = Filter.objects.select_related("tenant", "target").in_bulk([f.id for f in filters])
    redaction_rows = RedactionPolicy.objects.select_related("tenant", "target").in_bulk(
        [r.id for r in redactors]
    )
    return RouteProtections(
        target=target.slug if target else None,
        filters=tuple(_filter_shown(filter_rows[f.id]) for f in filters),
        redactions=tuple(_redaction_shown(redaction_rows[r.id], r) for r in redactors),
        depending_on_target=depending,
    )


def _scope_shown(row: Filter | RedactionPolicy) -> dict[str, object]:
    if row.credential_id is not None:
        return {"scope": "credential", "scope_id": row.credential_id}
    if row.target is not None:
        return {"scope": "target", "scope_id": row.target.slug}
    return {"scope": "tenant", "scope_id": row.tenant.name}


def _filter_shown(row: Filter) -> dict[str, object]:
    return {
        "id": row.id,
        **_scope_shown(row),
        "route": row.route or None,
        "paths": list(row.paths),
        "mode": row.mode,
    }


def _redaction_shown(row: RedactionPolicy, scoped: ScopedRedactor) -> dict[str, object]:
    redactor = scoped.redactor
    return {
        "id": row.id,
        **_scope_shown(row),
        "route": row.route or None,
        "detectors": [detector.name for detector in redactor.detectors],
        "action": str(redactor.action),
        "mode": str(redactor.mode),
    }


def _where(shown: dict[str, object]) -> str:
    scope = (
        f"{shown['scope']} {shown['scope_id']!r}"
        if shown["scope"] != "credential"
        else f"credential {shown['scope_id']}"
    )
    return f"{scope}, {shown['route'] or 'every route'}"


def _listed(names: object) -> str:
    return ", ".join(map(str, names)) if isinstance(names, list) else str(names)


def _count(number: int, one: str, many: str = "") -> str:
    return f"{number} {one if number == 1 else many or one + 's'}"


def filter_list(*, tenant: Tenant | None = None) -> QuerySet[Filter]:
    """Response filters by tenant, in stack order (the tenant's, the targets', the credentials')."""
    return _in_stack_order(Filter.objects.all(), tenant=tenant)


def redaction_policy_list(*, tenant: Tenant | None = None) -> QuerySet[RedactionPolicy]:
    """Redaction policies by tenant, in stack order."""
    return _in_stack_order(RedactionPolicy.objects.all(), tenant=tenant)


def _in_stack_order(rows: QuerySet[ScopeRow], *, tenant: Tenant | None) -> QuerySet[ScopeRow]:
    """``rows`` by tenant name, then as they stack: tenant-wide first, then per target, then per
    credential, each in its ``order``; only ``tenant``'s when given."""
    rows = rows.select_related("tenant", "target").order_by(
        "tenant__name",
        F("credential_id").asc(nulls_first=True),
        F("target_id").asc(nulls_first=True),
        "order",
        "id",
    )
    return rows if tenant is None else rows.filter(tenant=tenant)


def target_protections_get(*, credential: CompiledCredential, target: CompiledTarget) -> RouteProtections:
    """Every filter and redaction policy that applies to some call of ``credential`` on ``target``, in
    stack order, each described with the route it is narrowed to (``check_access`` with no route)."""
    filters = [scoped.filter for scoped in credential.filters if scoped.target_id in (None, target.id)]
    redactors = [scoped for scoped in credential.redactors if scoped.target_id in (None, target.id)]
    filter_rows = Filter.objects.select_related("tenant", "target").in_bulk([f.id for f in filters])
    redaction_rows = RedactionPolicy.objects.select_related("tenant", "target").in_bulk(
        [r.id for r in redactors]
    )
    return RouteProtections(
        target=target.slug,
        filters=tuple(_filter_shown(filter_rows[f.id]) for f in filters),
        redactions=tuple(_redaction_shown(redaction_rows[r.id], r) for r in redactors),
        depending_on_target={"filters": 0, "redactions": 0},
    )
