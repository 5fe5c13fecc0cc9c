"""The OAuth server's HTTP endpoints beyond django-oauth-toolkit's own: protected resource metadata per
target (RFC 9728), the admin's consent page, a size-bounded registration endpoint and an introspection
endpoint that answers a client about its own tokens only."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import unquote

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse_lazy
from django.views.decorators.http import require_GET
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.models import get_application_model
from oauth2_provider.views import AuthorizationView, IntrospectTokenView
from oauth2_provider.views.dynamic_client_registration import DynamicClientRegistrationView

from gateway.models import Target
from gateway.oauth.scopes import MCP_SCOPE, describe_scope
from gateway.oauth.selectors import consent_problem, resource_target
from gateway.oauth.services import oauth_consent_grant
from gateway.oauth.throttle import registration_quota
from gateway.roles import access_for

MAX_REGISTRATION_BYTES = 16 * 1024


def _json(data: dict[str, Any], status: int = 200) -> JsonResponse:
    response = JsonResponse(data, status=status)
    response["Access-Control-Allow-Origin"] = "*"
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def protected_resource_metadata(request: HttpRequest, slug: str) -> JsonResponse:
    """RFC 9728 metadata of the proxy URL ``/mcp/<slug>/``: the resource identifier tokens are bound to,
    this gateway as its authorization server, and the scopes registered clients may ask for there."""
    target = Target.objects.select_related("tenant").filter(slug=slug).first()
    if target is None:
        return _json(
            {"error": "not_found", "error_description": f"No MCP target is served at /mcp/{slug}/"}, 404
        )
    base = request.build_absolute_uri("/").rstrip("/")
    return _json(
        {
            "resource": f"{base}/mcp/{target.slug}/",
            "authorization_servers": [base],
            "scopes_supported": target.tenant.oauth_scope_list() or [MCP_SCOPE],
            "bearer_methods_supported": ["header"],
            "resource_name": f"MCP target {target.slug}",
        }
    )


class ConsentView(AuthorizationView):  # type: ignore[misc]
    """The authorization endpoint: an admin (signed in through the admin login) consents to a client's
    access to one target, named with the client's ``resource`` parameter, for the scopes it asked.

    The page names the tenant, the target, the client and each scope. Consenting to a registered
    client binds it to its own credential (``oauth_consent_grant``); one an admin created keeps its
    credential. Refusals (another tenant, a kind of client or scope the tenant does not accept) are
    shown on the page and nothing is granted. Only an admin of the target's tenant (gateway/roles.py)
    may consent: a tenant admin never grants a client access to another tenant's target.
    """

    template_name = "oauth/consent.html"
    login_url = reverse_lazy("admin:login")

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if user.is_authenticated and not (user.is_staff and user.has_perm("gateway.add_credential")):
            raise PermissionDenied("Only an admin who may create credentials can consent to OAuth clients.")
        response: HttpResponse = super().dispatch(request, *args, **kwargs)
        return response

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            scopes, credentials = self.validate_authorization_request(request)
        except OAuthToolkitError:
            answer: HttpResponse = super().get(request, *args, **kwargs)  # django-oauth-toolkit's error page
            return answer
        refusal = self._refusal(credentials["client_id"], request.GET.getlist("resource"), scopes)
        if refusal is not None:
            return refusal
        response: HttpResponse = super().get(request, *args, **kwargs)
        return response

    def form_valid(self, form: Any) -> HttpResponse:
        scopes = form.cleaned_data.get("scope", "").split()
        resources = form.cleaned_data.get("resource", "").split()
        refusal = self._refusal(form.cleaned_data["client_id"], resources, scopes)
        if refusal is not None:
            return refusal
        if form.cleaned_data.get("allow"):
            application = get_application_model().objects.get(client_id=form.cleaned_data["client_id"])
            target = resource_target(resources[0])
            if target is None:  # deleted since _refusal found it
                return self._refuse("The target no longer exists.")
            oauth_consent_grant(application=application, target=target, scopes=scopes)
        response: HttpResponse = super().form_valid(form)
        return response

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context: dict[str, Any] = super().get_context_data(**kwargs)
        resource = (self.request.GET.get("resource") or self.request.POST.get("resource") or "").split()
        target = resource_target(resource[0]) if len(resource) == 1 else None
        context["target"] = target
        context["tenant"] = target.tenant if target else None
        context["scope_lines"] = [(scope, describe_scope(scope)) for scope in kwargs.get("scopes", [])]
        return context

    def _refusal(self, client_id: str, resources: list[str], scopes: list[str]) -> HttpResponse | None:
        application = get_application_model().objects.filter(client_id=client_id).first()
        if application is None:
            return self._refuse("Unknown client.")
        if len(resources) != 1:
            return self._refuse("The client must name exactly one resource: the proxy URL of a target.")
        target = resource_target(resources[0])
        if target is None or not access_for(self.request.user).may_change(target.tenant_id):
            # Another tenant's target is refused exactly like one that does not exist.
            return self._refuse("The resource is not the proxy URL of a target you administer.")
        problem = consent_problem(application=application, target=target, scopes=scopes)
        return self._refuse(problem) if problem else None

    def _refuse(self, problem: str) -> HttpResponse:
        return render(self.request, self.template_name, {"refusal": problem}, status=400)


class BoundedRegistrationView(DynamicClientRegistrationView):  # type: ignore[misc]
    """RFC 7591 registration, its body bounded (the gateway reads no unbounded request body) and the
    registrations per client address and hour limited (gateway/oauth/throttle.py)."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if not declared.isdigit() or int(declared) > MAX_REGISTRATION_BYTES:
            return _json(
                {"error": "invalid_client_metadata", "error_description": "Registration body too large"}, 413
            )
        quota = registration_quota(request.META.get("REMOTE_ADDR") or "")
        if not quota.allowed:
            refused = _json(
                {
                    "error": "temporarily_unavailable",
                    "error_description": (
                        f"Too many registrations from this address: retry in {quota.retry_after} s"
                    ),
                },
                429,
            )
            refused["Retry-After"] = str(quota.retry_after)
            return refused
        response: HttpResponse = super().post(request, *args, **kwargs)
        return response


class OwnTokenIntrospectionView(IntrospectTokenView):  # type: ignore[misc]
    """RFC 7662 introspection for an authenticated client: a token of another client is reported
    inactive, so a client learns nothing about tokens it was not issued."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        token = request.POST.get("token")
        response: JsonResponse = self.get_token_response(token)
        if response.status_code == 200 and b'"active": true' in response.content:
            if _token_client_id(response) != _calling_client_id(request):
                return JsonResponse({"active": False})
        return response

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return JsonResponse({"error": "invalid_request", "error_description": "Use POST"}, status=405)


def _token_client_id(response: JsonResponse) -> str | None:
    import json

    data = json.loads(response.content)
    client_id = data.get("client_id")
    return client_id if isinstance(client_id, str) else None


def _calling_client_id(request: HttpRequest) -> str | None:
    """The client id of the (already authenticated) caller: HTTP Basic, else the form's client_id."""
    scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip()).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        return unquote(decoded.partition(":")[0])
    return request.POST.get("client_id")
