from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from audit.views import audit_keys
from gateway.health import healthz, readyz
from gateway.metrics.endpoint import metrics
from gateway.oauth.urls import well_known_urlpatterns

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path(".well-known/audit-keys", audit_keys, name="audit-keys"),
    path("metrics", metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("oauth/", include("gateway.oauth.urls")),
    *well_known_urlpatterns,
    path("api/v1/", include("gateway.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("dashboard/", include("dashboard.urls")),
]

handler404 = "gateway.api.errors.not_found"
