"""The REST API's routes (``/api/v1/``), one router over every app's view sets."""

from __future__ import annotations

from rest_framework.routers import DefaultRouter

from gateway.api import schema  # noqa: F401 - registers the OpenAPI authentication extensions
from gateway.api import views as gateway_views

router = DefaultRouter(trailing_slash="/?")
router.register("tenants", gateway_views.TenantViewSet, basename="tenant")
router.register("targets", gateway_views.TargetViewSet, basename="target")
router.register("credentials", gateway_views.CredentialViewSet, basename="credential")
router.register("rules", gateway_views.AllowRuleViewSet, basename="rule")

urlpatterns = router.urls
