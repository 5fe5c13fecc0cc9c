from django.contrib import admin
from django.urls import path

from gateway.health import healthz, readyz
from gateway.metrics.endpoint import metrics

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("admin/", admin.site.urls),
]
