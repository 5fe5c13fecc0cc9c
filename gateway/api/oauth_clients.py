"""The REST API of OAuth clients (``/api/v1/oauth-clients/``): the applications whose tokens act as a
credential. Listed (``?credential=<id>``), created for a credential (the client secret is in the
answer once, never again) and deleted, which revokes the client and every token it holds. Writes go
through gateway/oauth/services.py, as the CLI's and the admin's do."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from gateway.api.fields import ScopedRelatedField
from gateway.api.filters import IdFilterSet
from gateway.api.viewsets import ReadMixin, TenantScopedViewSet, WriteMixin
from gateway.models import Credential
from gateway.oauth.models import OAuthClient
from gateway.oauth.services import GRANTS, oauth_client_create, oauth_client_delete

#: django-oauth-toolkit's grant names back to the ones the gateway takes.
GRANT_NAMES = {value: name for name, value in GRANTS.items()}


class OAuthClientSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """An OAuth client as listed: never its secret (only a hash of it is stored)."""

    credential = serializers.IntegerField(source="credential_id", read_only=True)
    client_id = serializers.CharField(source="application.client_id", read_only=True)
    name = serializers.CharField(source="application.name", read_only=True)
    grant = serializers.SerializerMethodField()
    redirect_uris = serializers.SerializerMethodField()
    registered_by = serializers.CharField(
        source="application.registration_source",
        read_only=True,
        help_text="manual (an admin created it), dcr (dynamic registration) or cimd (a metadata document).",
    )

    class Meta:
        model = OAuthClient
        fields = [
            "id", "credential", "client_id", "name", "grant", "redirect_uris", "registered_by", "created_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_grant(self, binding: OAuthClient) -> str:
        grant = str(binding.application.authorization_grant_type)
        return GRANT_NAMES.get(grant, grant)

    def get_redirect_uris(self, binding: OAuthClient) -> list[str]:
        return str(binding.application.redirect_uris or "").split()


class OAuthClientCreateSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """A new OAuth client for one of the caller's credentials."""

    credential = ScopedRelatedField(queryset=Credential.objects.all())
    grant = serializers.ChoiceField(
        choices=sorted(GRANTS),
        help_text="client_credentials (a headless agent) or authorization_code (interactive, PKCE).",
    )
    name = serializers.CharField(required=False, allow_blank=True, max_length=255)
    redirect_uris = serializers.ListField(
        child=serializers.CharField(max_length=2000),
        required=False,
        max_length=20,
        help_text="authorization_code: where codes are sent (absolute http(s) URLs).",
    )


class IssuedOAuthClientSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """A new OAuth client with its secret: the only time the secret is ever shown."""

    client_secret = serializers.CharField(help_text="Shown once: store it now.")
    oauth_client = OAuthClientSerializer()


class OAuthClientFilter(IdFilterSet):
    class Meta:
        model = OAuthClient
        fields = ["credential"]


class OAuthClientViewSet(ReadMixin, WriteMixin, TenantScopedViewSet):
    """OAuth clients bound to credentials: their tokens act as the credential (its targets, rules,
    filters and meters, narrowed by the token's scopes). Deleting one revokes it and its tokens."""

    queryset = OAuthClient.objects.select_related("application")
    serializer_class = OAuthClientSerializer
    filterset_class = OAuthClientFilter
    tenant_path = "credential__tenant"
    http_method_names = ["get", "post", "delete", "head", "options"]

    def get_serializer_class(self) -> Any:
        return OAuthClientCreateSerializer if self.action == "create" else OAuthClientSerializer

    @extend_schema(request=OAuthClientCreateSerializer, responses={201: IssuedOAuthClientSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """A new client for a credential and its secret: the only time the secret is shown."""
        serializer = OAuthClientCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with transaction.atomic():
            issued = oauth_client_create(
                credential=data["credential"],
                grant=data["grant"],
                name=data.get("name", ""),
                redirect_uris=data.get("redirect_uris", ()),
            )
        binding = self.get_queryset().get(pk=issued.binding.pk)
        body = {"client_secret": issued.client_secret, "oauth_client": OAuthClientSerializer(binding).data}
        return self.tagged(Response(body, status=201), binding)

    def delete_row(self, binding: OAuthClient) -> None:
        oauth_client_delete(application=binding.application)
