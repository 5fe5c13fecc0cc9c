"""API views of the core domain: tenants, targets, credentials (with rotate, revoke and deactivate)
and allow-rules. Every write goes through gateway/services.py, as the CLI's and the admin's do."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from gateway import services
from gateway.api import filters, serializers
from gateway.api.viewsets import ReadMixin, TenantScopedViewSet, WriteMixin
from gateway.models import Credential, Target, Tenant
from gateway.roles import access_for
from policies.models import AllowRule


def caller_tenant(request: Request, data: dict[str, Any]) -> Tenant:
    """The tenant a new object belongs to: the one given, or the caller's only tenant."""
    tenant = data.get("tenant")
    if tenant is not None:
        return tenant  # type: ignore[no-any-return]
    tenant_ids = access_for(request.user).tenant_ids
    if tenant_ids is None or len(tenant_ids) != 1:
        raise ValidationError({"tenant": "This field is required."})
    return Tenant.objects.get(pk=next(iter(tenant_ids)))


class TenantViewSet(ReadMixin, WriteMixin, TenantScopedViewSet):
    """Tenants: a superuser creates and deletes them; a tenant admin reads and renames its own."""

    queryset = Tenant.objects.all()
    serializer_class = serializers.TenantSerializer
    filterset_class = filters.TenantFilter
    tenant_path = "pk"

    def create_row(self, data: dict[str, Any]) -> Tenant:
        return services.tenant_create(name=data["name"])

    def update_row(self, tenant: Tenant, data: dict[str, Any]) -> Tenant:
        return services.tenant_update(tenant=tenant, name=data.get("name", tenant.name))

    def delete_row(self, tenant: Tenant) -> None:
        services.tenant_delete(tenant=tenant)


class TargetViewSet(ReadMixin, WriteMixin, TenantScopedViewSet):
    """Upstream MCP servers. The upstream secret is write-only (``has_secret`` says whether one is set)."""

    queryset = Target.objects.all()
    serializer_class = serializers.TargetSerializer
    filterset_class = filters.TargetFilter

    def create_row(self, data: dict[str, Any]) -> Target:
        return services.target_create(
            tenant=caller_tenant(self.request, data),
            slug=data["slug"],
            upstream_url=data["upstream_url"],
            kind=data.get("kind", Target.Kind.MCP),
            auth_type=data.get("auth_type", Target.AuthType.NONE),
            auth_header_name=data.get("auth_header_name", ""),
            auth_secret=data.get("auth_secret", ""),
            timeout_seconds=data.get("timeout_seconds", 30.0),
            allowed_origins=data.get("allowed_origins", ()),
            hold_new_tools=data.get("hold_new_tools", False),
            validate_arguments=data.get("validate_arguments", True),
            trusted_url_hosts=data.get("trusted_url_hosts", ()),
        )

    def update_row(self, target: Target, data: dict[str, Any]) -> Target:
        if "tenant" in data and data["tenant"].pk != target.tenant_id:
            raise ValidationError({"tenant": "A target cannot move to another tenant."})
        services.target_update(
            target=target,
            data={name: data[name] for name in services.TARGET_UPDATE_FIELDS if name in data},
            allowed_origins=data.get("allowed_origins"),
            trusted_url_hosts=data.get("trusted_url_hosts"),
        )
        _update_upstream_auth(target, data)
        return target

    def delete_row(self, target: Target) -> None:
        services.target_delete(target=target)


def _update_upstream_auth(target: Target, data: dict[str, Any]) -> None:
    """Replace the upstream credential when the request changes it; a PUT that repeats the auth type
    and header without the (write-only) secret keeps the stored one."""
    if not {"auth_type", "auth_header_name", "auth_secret"} & data.keys():
        return
    auth_type = data.get("auth_type", target.auth_type)
    header = data.get("auth_header_name", target.auth_header_name)
    secret = data.get("auth_secret", "")
    unchanged = (auth_type, header.strip()) == (target.auth_type, target.auth_header_name)
    if secret or not unchanged:
        services.target_set_upstream_auth(
            target=target, auth_type=auth_type, header_name=header, secret=secret
        )


class CredentialViewSet(ReadMixin, WriteMixin, TenantScopedViewSet):
    """Agents' credentials: an API key's token is returned once, on create and on ``rotate``; ``revoke``
    refuses it from the next call on; ``deactivate`` retires it for good (the audit trail keeps it).
    Deactivated credentials are listed only with ``include_deactivated=true``."""

    queryset = Credential.objects.prefetch_related("targets", "rules")
    serializer_class = serializers.CredentialSerializer
    filterset_class = filters.CredentialFilter
    change_actions = ("rotate", "revoke", "deactivate")
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    @extend_schema(responses={201: serializers.IssuedCredentialSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """A new credential and, for an API key, its token: the only time the token is shown."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            credential, token = self._issue(serializer.validated_data)
        body = {"token": token, "credential": self.get_serializer(credential).data}
        return self.tagged(Response(body, status=201), credential)

    def _issue(self, data: dict[str, Any]) -> tuple[Credential, str | None]:
        tenant = caller_tenant(self.request, data)
        rules = [(rule["method"], rule["path"]) for rule in data.get("allow", [])]
        common = {"tenant": tenant, "name": data["name"], "targets": data.get("targets", []), "allow": rules}
        common["expires_at"] = data.get("expires_at")
        if data.get("kind") == Credential.Kind.JWT:
            return services.jwt_credential_create(jwt=_jwt_settings(None, data), **common), None
        if any(data.get(name) for name in (*serializers.JWT_FIELDS, "jwt_hs256_secret")):
            raise ValidationError({"kind": "Only a JWT credential has JWT settings: give kind 'jwt'."})
        issued = services.credential_create(**common)
        return issued.credential, issued.token

    def update_row(self, credential: Credential, data: dict[str, Any]) -> Credential:
        if "tenant" in data and data["tenant"].pk != credential.tenant_id:
            raise ValidationError({"tenant": "A credential cannot move to another tenant."})
        services.credential_update(credential=credential, data=data, targets=data.get("targets"))
        if credential.is_jwt and {*serializers.JWT_FIELDS, "jwt_hs256_secret"} & data.keys():
            services.credential_set_jwt(credential=credential, jwt=_jwt_settings(credential, data))
        elif not credential.is_jwt and any(data.get(name) for name in serializers.JWT_FIELDS):
            raise ValidationError({"kind": "Only a JWT credential has JWT settings."})
        return credential

    @extend_schema(
        request=serializers.StatusSerializer, responses={200: serializers.IssuedCredentialSerializer}
    )
    @action(detail=True, methods=["post"])
    def rotate(self, request: Request, pk: str | None = None) -> Response:
        """A new token for an API key credential; the old one stops working at once."""
        with transaction.atomic():
            issued = services.credential_rotate(credential=self.locked_object())
        credential = self.get_queryset().get(pk=issued.credential.pk)
        body = {"token": issued.token, "credential": self.get_serializer(credential).data}
        return self.tagged(Response(body), credential)

    @extend_schema(request=serializers.StatusSerializer, responses={200: serializers.CredentialSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        """Refuse the credential from the next call on (every gateway process within a second)."""
        return self._change(services.credential_revoke)

    @extend_schema(request=serializers.StatusSerializer, responses={200: serializers.CredentialSerializer})
    @action(detail=True, methods=["post"])
    def deactivate(self, request: Request, pk: str | None = None) -> Response:
        """Retire the credential for good; its row stays for the audit trail."""
        return self._change(services.credential_deactivate)

    def _change(self, service: Any) -> Response:
        with transaction.atomic():
            credential = service(credential=self.locked_object())
        credential = Credential.objects.prefetch_related("targets", "rules").get(pk=credential.pk)
        return self.tagged(Response(self.get_serializer(credential).data), credential)


def _jwt_settings(credential: Credential | None, data: dict[str, Any]) -> services.JwtSettings:
    """The JWT settings of ``data`` over the credential's current ones (a new one: over the defaults)."""

    def value(name: str, default: Any = "") -> Any:
        if name in data:
            return data[name]
        return getattr(credential, name) if credential is not None else default

    return services.JwtSettings(
        issuer=value("jwt_issuer"),
        audience=value("jwt_audience"),
        subject=value("jwt_subject"),
        subject_claim=value("jwt_subject_claim", "sub"),
        leeway_seconds=value("jwt_leeway_seconds", 30),
        hs256_secret=data.get("jwt_hs256_secret", ""),
        public_key=value("jwt_public_key"),
        jwks_url=value("jwt_jwks_url"),
    )


class AllowRuleViewSet(ReadMixin, WriteMixin, TenantScopedViewSet):
    """A credential's allow-rules (``METHOD /path-glob``); filter with ``?credential=<id>``."""

    queryset = AllowRule.objects.select_related("credential")
    serializer_class = serializers.AllowRuleSerializer
    filterset_class = filters.AllowRuleFilter
    tenant_path = "credential__tenant"

    def create_row(self, data: dict[str, Any]) -> AllowRule:
        return services.allow_rule_create(
            credential=data["credential"],
            method=data.get("method", "POST"),
            path=data["path"],
            description=data.get("description", ""),
            order=data.get("order"),
        )

    def update_row(self, rule: AllowRule, data: dict[str, Any]) -> AllowRule:
        if "credential" in data and data["credential"].pk != rule.credential_id:
            raise ValidationError({"credential": "A rule cannot move to another credential."})
        return services.allow_rule_update(rule=rule, data=data)

    def delete_row(self, rule: AllowRule) -> None:
        services.allow_rule_delete(rule=rule)
