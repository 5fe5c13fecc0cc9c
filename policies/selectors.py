"""Reads of policy configuration, compiled for the proxy (sync; the cache runs them in a thread)."""

from __future__ import annotations

from gateway.crypto import decrypt_secret
from gateway.models import Credential, Target
from policies.compiler import CompiledCredential, CompiledTarget, compile_rule
from policies.models import PolicyVersion


def compiled_credential_get(*, prefix: str) -> CompiledCredential | None:
    """Load and compile the credential with token prefix ``prefix`` (two queries), or None."""
    credential = Credential.objects.filter(prefix=prefix).prefetch_related("rules", "targets").first()
    if credential is None:
        return None
    return compile_credential(credential)


def credential_prefixes_get() -> frozenset[str]:
    """The token prefix of every credential that exists, revoked and deactivated ones included (one query).

    The proxy refuses a token whose prefix is not in this set without another query.
    """
    return frozenset(Credential.objects.values_list("prefix", flat=True))


def compile_credential(credential: Credential) -> CompiledCredential:
    """Compile a credential (with its rules and targets) into its frozen form."""
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
        target_ids=frozenset(t.id for t in credential.targets.all()),
        rules=rules,
    )


def compiled_target_get(*, slug: str) -> CompiledTarget | None:
    """Load and compile the target reached at ``/mcp/<slug>/``, or None."""
    target = Target.objects.filter(slug=slug).first()
    if target is None:
        return None
    return compile_target(target)


def compile_target(target: Target) -> CompiledTarget:
    """Compile a target, decrypting its upstream secret into the header to inject."""
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
    )


def policy_version_get() -> int:
    """The current configuration version (0 before any change)."""
    row = PolicyVersion.objects.filter(pk=1).values_list("version", flat=True).first()
    return row or 0
