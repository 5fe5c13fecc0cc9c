"""The OAuth endpoints, under ``/oauth/`` in django-oauth-toolkit's ``oauth2_provider`` namespace (its
metadata view finds them there), and the well-known metadata documents at the root."""

from __future__ import annotations

from django.urls import path, re_path
from oauth2_provider import views as dot

from gateway.oauth import views

app_name = "oauth2_provider"

urlpatterns = [
    path("authorize/", views.ConsentView.as_view(), name="authorize"),
    path("token/", dot.TokenView.as_view(), name="token"),
    path("revoke/", dot.RevokeTokenView.as_view(), name="revoke-token"),
    path("introspect/", views.OwnTokenIntrospectionView.as_view(), name="introspect"),
    path("register/", views.BoundedRegistrationView.as_view(), name="dcr-register"),
    path(
        "register/<str:client_id>/",
        dot.DynamicClientRegistrationManagementView.as_view(),
        name="dcr-register-management",
    ),
]

# At the server root (gateway/urls.py). RFC 8414's document, and RFC 9728's for each proxy URL in the
# path-inserted form the MCP authorization spec has clients try (with or without the final slash).
well_known_urlpatterns = [
    path(
        ".well-known/oauth-authorization-server",
        dot.OAuthServerMetadataView.as_view(),
        name="oauth-authorization-server",
    ),
    re_path(
        r"^\.well-known/oauth-protected-resource/mcp/(?P<slug>[-a-zA-Z0-9_]+)/?$",
        views.protected_resource_metadata,
        name="oauth-protected-resource",
    ),
]
