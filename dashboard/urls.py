from django.urls import path

from dashboard.views import dashboard_home, dashboard_tenant

app_name = "dashboard"

urlpatterns = [
    path("", dashboard_home, name="home"),
    path("<int:tenant_id>/", dashboard_tenant, name="tenant"),
]
