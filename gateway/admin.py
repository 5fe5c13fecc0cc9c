"""Admin for tenants, targets and credentials.

Secrets stay secret here too: a target's upstream secret and a JWT credential's HS256 secret are
write-only (stored encrypted, shown only as "set" / "not set"); a credential's token is minted by
``gateway.services`` and shown once, in a message, and its digest is never displayed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AdminURLFieldWidget
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from audit.admin import ChangeLoggedAdmin
from gateway.models import (
    ApiToken,
    Credential,
    Target,
    Tenant,
    TenantMembership,
    audited_credential_ids,
)
from gateway.oauth.admin import OAuthClientInline, issue_oauth_client, revoke_deleted_clients
from gateway.oauth.models import OAuthClient
from gateway.services import (
    IssuedCredential,
    JwtSettings,
    api_token_revoke,
    credential_create,
    credential_deactivate,
    credential_revoke,
    credential_rotate,
    jwt_credential_create,
    jwt_settings_apply,
    target_set_upstream_auth,
)
from metering.admin import CredentialMeterInline, TargetMeterInline, TenantMeterInline
from policies.admin import AllowRuleInline, pinned_tools_link

_RESERVED_HEADERS = {"host", "content-length"}


@admin.register(Tenant)
class TenantAdmin(ChangeLoggedAdmin):
    """Tenants: every other object belongs to exactly one."""

    tenant_path = "pk"

    list_display = ["name", "created_at"]
    list_filter = ["created_at"]
    search_fields = ["name"]
    inlines = [TenantMeterInline]

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        if protected:
            # Name the credentials that audit events keep, not the delete permission they lack.
            perms_needed = set()
        return deleted, counts, perms_needed, protected


@admin.register(TenantMembership)
class TenantMembershipAdmin(ChangeLoggedAdmin):
    """Which staff user is admin or reviewer of which tenant (gateway/roles.py); superusers only."""

    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role", "tenant"]
    search_fields = ["user__username"]
    list_select_related = ["user", "tenant"]
    autocomplete_fields = ["user"]


class TargetAdminForm(forms.ModelForm):
    """The target form, with a write-only upstream secret validated as ``target_set_upstream_auth`` does."""

    upstream_url = forms.URLField(
        label="Upstream URL",
        max_length=2000,
        assume_scheme="https",
        widget=AdminURLFieldWidget(),
        help_text="URL of the upstream server; https:// is assumed when no scheme is given.",
    )
    upstream_secret = forms.CharField(
        label="Upstream secret",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: stored encrypted and never displayed. Leave blank to keep the stored secret.",
    )

    class Meta:
        model = Target
        fields = [
            "tenant",
            "slug",
            "kind",
            "upstream_url",
            "timeout_seconds",
            "allowed_origins",
            "auth_type",
            "auth_header_name",
            "hold_new_tools",
            "validate_arguments",
            "trusted_url_hosts",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and "tenant" in self.fields:
            # Moving a target would silently cut it off from its tenant's credentials.
            self.fields["tenant"].disabled = True

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        auth_type = cleaned.get("auth_type")
        header_name = cleaned.get("auth_header_name", "").strip()
        if auth_type == Target.AuthType.NONE:
            if cleaned.get("upstream_secret"):
                self.add_error("upstream_secret", "Choose bearer or custom header auth to send a secret.")
            cleaned["auth_header_name"] = ""
        elif auth_type is not None:
            self._check_secret_and_header(auth_type, header_name)
            cleaned["auth_header_name"] = header_name if auth_type == Target.AuthType.HEADER else ""
        return cleaned

    def _check_secret_and_header(self, auth_type: str, header_name: str) -> None:
        if not self.cleaned_data.get("upstream_secret") and not self.instance.has_upstream_secret:
            self.add_error("upstream_secret", "An upstream secret is required for this auth type.")
        if auth_type != Target.AuthType.HEADER:
            return
        if not header_name:
            self.add_error("auth_header_name", "A header name is required for custom header auth.")
        elif header_name.lower() in _RESERVED_HEADERS:
            self.add_error("auth_header_name", f"{header_name!r} cannot carry an upstream secret.")


@admin.register(Target)
class TargetAdmin(ChangeLoggedAdmin):
    """Upstream MCP servers; the upstream secret is encrypted by ``target_set_upstream_auth``."""

    form = TargetAdminForm
    inlines = [TargetMeterInline]
    list_display = ["slug", "tenant", "kind", "upstream_url", "auth_type", "upstream_secret_status"]
    list_filter = ["tenant", "kind", "auth_type"]
    search_fields = ["slug", "upstream_url", "tenant__name"]
    list_select_related = ["tenant"]
    readonly_fields = ["upstream_secret_status", "pinned_tools", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["tenant", "slug", "kind", "upstream_url", "timeout_seconds", "allowed_origins"]}),
        (
            "Upstream authentication",
            {"fields": ["auth_type", "auth_header_name", "upstream_secret", "upstream_secret_status"]},
        ),
        (
            "Tools",
            {"fields": ["hold_new_tools", "validate_arguments", "trusted_url_hosts", "pinned_tools"]},
        ),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description="Upstream secret")
    def upstream_secret_status(self, target: Target) -> str:
        return "set" if target.has_upstream_secret else "not set"

    @admin.display(description="Pinned tools")
    def pinned_tools(self, target: Target) -> str:
        """How many tools are pinned, how many are held, and a link to review them."""
        if target.pk is None:
            return "none yet: tools are pinned when an agent first lists them"
        return pinned_tools_link(target)

    def save_model(self, request: HttpRequest, obj: Target, form: TargetAdminForm, change: bool) -> None:
        secret = form.cleaned_data.get("upstream_secret", "")
        if secret or obj.auth_type == Target.AuthType.NONE:
            target_set_upstream_auth(
                target=obj, auth_type=obj.auth_type, header_name=obj.auth_header_name, secret=secret
            )
        else:
            obj.save()  # The stored (encrypted) secret is kept as it is.


class CredentialStatusFilter(admin.SimpleListFilter):
    """Filter credentials by status; deactivated ones are hidden unless asked for."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [
            ("active", "Active"),
            ("expired", "Expired"),
            ("revoked", "Revoked"),
            ("deactivated", "Deactivated"),
            ("any", "Any, deactivated included"),
        ]

    def choices(self, changelist: Any) -> Iterator[Any]:
        choices = iter(super().choices(changelist))
        yield {**next(choices), "display": "All but deactivated"}  # the default, no status chosen
        yield from choices

    def queryset(self, request: HttpRequest, queryset: QuerySet[Credential]) -> QuerySet[Credential]:
        value = self.value()
        if value == "any":
            return queryset
        if value == "deactivated":
            return queryset.filter(deactivated_at__isnull=False)
        queryset = queryset.filter(deactivated_at__isnull=True)
        if value == "active":
            return queryset.filter(pk__in=Credential.objects.active())
        if value == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if value == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=timezone.now())
        return queryset


JWT_FIELDS = [
    "jwt_issuer",
    "jwt_audience",
    "jwt_subject_claim",
    "jwt_subject",
    "jwt_leeway_seconds",
    "jwt_public_key",
    "jwt_jwks_url",
    "jwt_hs256_secret",
]


class CredentialAdminForm(forms.ModelForm):
    """A credential may only be bound to targets of its own tenant; a JWT credential's settings are
    validated by the same service as the CLI's, its HS256 secret write-only."""

    jwt_jwks_url = forms.URLField(
        label="JWKS URL",
        max_length=2000,
        required=False,
        assume_scheme="https",
        widget=AdminURLFieldWidget(),
        help_text="The identity provider's key set (https://); keys are cached and refreshed on a new kid.",
    )
    jwt_hs256_secret = forms.CharField(
        label="HS256 shared secret",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: stored encrypted and never displayed. Leave blank to keep the stored secret; "
        "a public key or JWKS URL replaces it.",
    )

    class Meta:
        model = Credential
        fields = ["tenant", "name", "kind", "targets", "expires_at", *JWT_FIELDS[:-1]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        targets = self.fields["targets"]
        targets.queryset = Target.objects.select_related("tenant")
        targets.label_from_instance = lambda target: f"{target.slug} ({target.tenant})"
        for optional in ("kind", "jwt_leeway_seconds"):  # an API key's form may leave them out
            if optional in self.fields:
                self.fields[optional].required = False
        if self.instance.pk:
            self.fields["tenant"].disabled = True
            self.fields["kind"].disabled = True
            targets.queryset = targets.queryset.filter(tenant_id=self.instance.tenant_id)

    def jwt_settings(self) -> JwtSettings:
        cleaned = self.cleaned_data
        return JwtSettings(
            issuer=cleaned.get("jwt_issuer") or "",
            audience=cleaned.get("jwt_audience") or "",
            subject=cleaned.get("jwt_subject") or "",
            subject_claim=cleaned.get("jwt_subject_claim") or "",
            leeway_seconds=cleaned.get("jwt_leeway_seconds") or 0,
            hs256_secret=cleaned.get("jwt_hs256_secret") or "",
            public_key=cleaned.get("jwt_public_key") or "",
            jwks_url=cleaned.get("jwt_jwks_url") or "",
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        cleaned["kind"] = cleaned.get("kind") or Credential.Kind.API_KEY
        if cleaned.get("jwt_leeway_seconds") is None and "jwt_leeway_seconds" not in self.errors:
            cleaned["jwt_leeway_seconds"] = Credential._meta.get_field("jwt_leeway_seconds").get_default()
        cleaned["jwt_subject_claim"] = (cleaned.get("jwt_subject_claim") or "").strip() or "sub"
        if cleaned["kind"] == Credential.Kind.JWT:
            try:  # the model's clean (run next, by the form) checks the rest
                jwt_settings_apply(credential=self.instance, jwt=self.jwt_settings())
            except ValidationError as error:
                self.add_error(None, error)
        elif cleaned.get("jwt_hs256_secret"):
            self.add_error("jwt_hs256_secret", "Only a JWT credential has an HS256 secret.")
        tenant = cleaned.get("tenant")
        foreign = [
            t.slug for t in cleaned.get("targets", []) if tenant is not None and t.tenant_id != tenant.id
        ]
        if foreign:
            self.add_error(
                "targets", f"Only targets of tenant {tenant} can be bound; not: {', '.join(sorted(foreign))}."
            )
        return cleaned


@admin.register(Credential)
class CredentialAdmin(ChangeLoggedAdmin):
    """Agent credentials: created and rotated through ``gateway.services``; an API key's token is shown
    once, a JWT credential's settings are shown and edited (its HS256 secret only as "set").

    Credentials are never deleted here (audit events refer to them): the deactivate action retires
    them instead, and the default list hides deactivated ones.
    """

    form = CredentialAdminForm
    inlines = [AllowRuleInline, CredentialMeterInline, OAuthClientInline]
    list_display = ["name", "tenant", "kind", "prefix", "status", "expires_at", "last_used_at"]
    list_filter = [CredentialStatusFilter, "kind", "tenant", "targets"]
    search_fields = ["name", "prefix", "tenant__name"]
    list_select_related = ["tenant"]
    readonly_fields = ["prefix", "status", "created_at", "revoked_at", "deactivated_at", "last_used_at"]
    actions = ["revoke_selected", "rotate_token", "deactivate_selected", issue_oauth_client]

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is OAuthClient:
            revoke_deleted_clients(formset)
            return
        super().save_formset(request, form, formset, change)

    def has_delete_permission(self, request: HttpRequest, obj: Credential | None = None) -> bool:
        """No bulk delete; a credential that audit events refer to is deactivated, never deleted."""
        if obj is None or audited_credential_ids([obj.pk]):
            return False
        return super().has_delete_permission(request, obj)

    def get_fieldsets(self, request: HttpRequest, obj: Credential | None = None) -> list[Any]:
        editable = (None, {"fields": ["tenant", "name", "kind", "targets", "expires_at"]})
        jwt = (
            "JWT (JWT credentials only)",
            {
                "fields": [*JWT_FIELDS, "hs256_secret_status"] if obj else JWT_FIELDS,
                "description": "Tokens are verified with exactly one key source: an HS256 shared secret, "
                "a PEM public key (RS256 or ES256) or a JWKS URL.",
            },
        )
        if obj is None:
            return [editable, jwt]
        shown = (
            ("Identity", {"fields": self.readonly_fields})
            if obj.is_jwt
            else ("Token", {"fields": self.readonly_fields})
        )
        return [editable, jwt, shown] if obj.is_jwt else [editable, shown]

    def get_readonly_fields(self, request: HttpRequest, obj: Credential | None = None) -> list[str]:
        return (
            [*self.readonly_fields, "hs256_secret_status"] if obj is not None else list(self.readonly_fields)
        )

    @admin.display(description="HS256 secret")
    def hs256_secret_status(self, credential: Credential) -> str:
        return "set" if credential.has_hs256_secret else "not set"

    def save_model(
        self, request: HttpRequest, obj: Credential, form: CredentialAdminForm, change: bool
    ) -> None:
        if change:
            obj.save()  # a new HS256 secret was encrypted onto obj when the form was cleaned
            return
        if obj.is_jwt:
            credential = jwt_credential_create(
                tenant=obj.tenant,
                name=obj.name,
                jwt=form.jwt_settings(),
                targets=form.cleaned_data["targets"],
                expires_at=obj.expires_at,
            )
            _adopt(obj, credential)
            message = f"Created JWT credential “{credential.name}” (id {credential.id}): agents present JWTs "
            self.message_user(request, message + f"from {credential.jwt_issuer}.", messages.SUCCESS)
            return
        issued = credential_create(
            tenant=obj.tenant, name=obj.name, targets=form.cleaned_data["targets"], expires_at=obj.expires_at
        )
        _adopt(obj, issued.credential)
        self.message_user(request, _token_message(issued, "Created"), messages.SUCCESS)

    @admin.action(description="Revoke selected credentials", permissions=["change"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[Credential]) -> None:
        active = [credential for credential in queryset if credential.revoked_at is None]
        for credential in active:
            credential_revoke(credential=credential)
        self.message_user(request, f"Revoked {len(active)} credential(s).", messages.SUCCESS)

    @admin.action(
        description="Deactivate selected credentials (kept for the audit trail)", permissions=["change"]
    )
    def deactivate_selected(self, request: HttpRequest, queryset: QuerySet[Credential]) -> None:
        remaining = [credential for credential in queryset if credential.deactivated_at is None]
        for credential in remaining:
            credential_deactivate(credential=credential)
        self.message_user(request, f"Deactivated {len(remaining)} credential(s).", messages.SUCCESS)

    @admin.action(description="Rotate token", permissions=["change"])
    def rotate_token(self, request: HttpRequest, queryset: QuerySet[Credential]) -> None:
        for credential in queryset:
            if credential.revoked_at is not None:
                warning = f"Credential “{credential.name}” is revoked: its token was not rotated."
                self.message_user(request, warning, messages.WARNING)
                continue
            if credential.is_jwt:
                warning = f"Credential “{credential.name}” is a JWT credential: it has no token to rotate."
                self.message_user(request, warning, messages.WARNING)
                continue
            issued = credential_rotate(credential=credential)
            self.message_user(request, _token_message(issued, "Rotated"), messages.SUCCESS)


def _adopt(unsaved: Credential, saved: Credential) -> None:
    """Make the admin's unsaved instance the row the service created.

    The admin's inline formsets and its log entry are bound to ``unsaved``; the token is minted only
    by ``credential_create``, so the saved row's state is copied onto the admin's instance.
    """
    for field in Credential._meta.concrete_fields:
        setattr(unsaved, field.attname, getattr(saved, field.attname))
    unsaved._state.adding = False
    unsaved._state.db = saved._state.db


def _token_message(issued: IssuedCredential, verb: str) -> SafeString:
    return format_html(
        "{} credential “{}” (id {}). Its token is <code>{}</code> — copy it now: it will not be shown again.",
        verb,
        issued.credential.name,
        issued.credential.id,
        issued.token,
    )


@admin.register(ApiToken)
class ApiTokenAdmin(ChangeLoggedAdmin):
    """Users' REST API tokens (superusers only, gateway/roles.py): listed and revoked here, created with
    ``manage.py create_api_token`` (the token is shown once, there)."""

    tenant_path = "user__tenant_membership__tenant"
    list_display = [
        "prefix",
        "name",
        "user",
        "scope",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["scope"]
    search_fields = ["prefix", "name", "user__username"]
    list_select_related = ["user"]
    fields = ["user", "name", "prefix", "scope", "created_at", "expires_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    actions = ["revoke_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    @admin.action(description="Revoke the selected API tokens", permissions=["change"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for api_token in queryset.filter(revoked_at__isnull=True):
            api_token_revoke(api_token=api_token)
        self.message_user(request, "Revoked the selected API tokens.", messages.SUCCESS)
