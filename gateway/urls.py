from django.contrib import admin
from django.urls import path

from audit.views import audit_keys
from gateway.health import healthz, readyz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path(".well-known/audit-keys", audit_keys, name="audit-keys"),
    path("admin/", admin.site.urls),
]
