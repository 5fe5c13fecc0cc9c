"""The REST API's routes (``/api/v1/``), one router over every app's view sets."""

from __future__ import annotations

from rest_framework.routers import DefaultRouter

from audit.api import views as audit_views
from audit.api.exports import AuditExportViewSet
from gateway.api import schema  # noqa: F401 - registers the OpenAPI authentication extensions
from gateway.api import views as gateway_views
from gateway.api.oauth_clients import OAuthClientViewSet
from metering.api import views as metering_views
from policies.api import views as policies_views

router = DefaultRouter(trailing_slash="/?")
router.register("tenants", gateway_views.TenantViewSet, basename="tenant")
router.register("targets", gateway_views.TargetViewSet, basename="target")
router.register("credentials", gateway_views.CredentialViewSet, basename="credential")
router.register("rules", gateway_views.AllowRuleViewSet, basename="rule")
router.register("meters", metering_views.MeterViewSet, basename="meter")
router.register("filters", policies_views.FilterViewSet, basename="filter")
router.register("redaction-policies", policies_views.RedactionPolicyViewSet, basename="redaction-policy")
router.register("tools", policies_views.PinnedToolViewSet, basename="tool")
router.register("audit-events", audit_views.AuditEventViewSet, basename="audit-event")
router.register("exports", AuditExportViewSet, basename="export")
router.register("usage", metering_views.UsageRollupViewSet, basename="usage")
router.register("siem-sinks", audit_views.SiemSinkViewSet, basename="siem-sink")
router.register("audit-settings", audit_views.AuditSettingsViewSet, basename="audit-settings")
router.register("oauth-clients", OAuthClientViewSet, basename="oauth-client")

urlpatterns = router.urls
