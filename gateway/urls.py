from django.contrib import admin
from django.urls import path, re_path

from gateway.health import healthz, readyz
from gateway.proxy.view import proxy

urlpatterns = [
    re_path(r"^mcp/(?P<slug>[-a-zA-Z0-9_]+)(?P<subpath>/.*)?$", proxy, name="proxy"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("admin/", admin.site.urls),
]
