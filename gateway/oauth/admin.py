"""The OAuth clients of a credential, on the credential's admin page: listed, issued and revoked."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from gateway.models import Credential
from gateway.oauth.models import OAuthClient
from gateway.oauth.services import oauth_client_create, oauth_client_delete


class OAuthClientInline(admin.TabularInline):  # type: ignore[type-arg]
    """A credential's OAuth clients; deleting one here revokes the client and every token it holds."""

    model = OAuthClient
    extra = 0
    can_delete = True
    verbose_name_plural = (
        "OAuth clients (tokens act as this credential; delete to revoke a client and its tokens)"
    )
    fields = ["client_id", "client_name", "grant", "registered_by", "created_at"]
    readonly_fields = ["client_id", "client_name", "grant", "registered_by", "created_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # issued with the "Issue an OAuth client" action: its secret is shown once

    @admin.display(description="client id")
    def client_id(self, binding: OAuthClient) -> str:
        return str(binding.application.client_id)

    @admin.display(description="name")
    def client_name(self, binding: OAuthClient) -> str:
        return str(binding.application.name)

    @admin.display(description="grant")
    def grant(self, binding: OAuthClient) -> str:
        return str(binding.application.get_authorization_grant_type_display())

    @admin.display(description="registered by")
    def registered_by(self, binding: OAuthClient) -> str:
        return str(binding.application.get_registration_source_display())


def revoke_deleted_clients(formset: Any) -> None:
    """Save the OAuth client inline: each client deleted there is revoked with its application and tokens."""
    formset.save(commit=False)
    for binding in formset.deleted_objects:
        oauth_client_delete(application=binding.application)


@admin.action(description="Issue an OAuth client (client credentials)", permissions=["change"])
def issue_oauth_client(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Credential]) -> None:
    for credential in queryset:
        if credential.status != "active":
            modeladmin.message_user(
                request,
                f"Credential “{credential.name}” is {credential.status}: no client issued.",
                messages.WARNING,
            )
            continue
        issued = oauth_client_create(credential=credential, grant="client_credentials")
        message = format_html(
            "OAuth client for “{}”: client id <code>{}</code>, secret <code>{}</code> — copy it now: it will "
            "not be shown again.",
            credential.name,
            issued.application.client_id,
            issued.client_secret,
        )
        modeladmin.message_user(request, message, messages.SUCCESS)
