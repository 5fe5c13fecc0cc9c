from django.contrib import admin
from django.urls import include, path

from audit.views import audit_keys
from gateway.health import healthz, readyz
from gateway.metrics.endpoint import metrics

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path(".well-known/audit-keys", audit_keys, name="audit-keys"),
    path("metrics", metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("dashboard/", include("dashboard.urls")),
]
