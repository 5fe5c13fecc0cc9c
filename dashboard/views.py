"""The security admin's dashboard: one page per tenant and period, and the live call feed's page.

Login is the admin's (session auth); every view applies ``access_for(user)``: a member sees only its
own tenant, a superuser picks any. Another tenant's dashboard is a 404, like any page that does not
exist, so its id reveals nothing.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.db import OperationalError, connection, transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.views.decorators.http import require_GET

from dashboard import charts, selectors
from gateway.models import Tenant
from gateway.roles import access_for

LOGIN_URL = reverse_lazy("admin:login")
#: Longest a dashboard query may run (PostgreSQL's statement_timeout) before the page answers 503.
QUERY_SECONDS = 10.0


def _visible_tenants(request: HttpRequest) -> list[Tenant]:
    access = access_for(request.user)
    return list(access.filter(Tenant.objects.order_by("name"), "pk"))


@require_GET
@login_required(login_url=LOGIN_URL)
def dashboard_home(request: HttpRequest) -> HttpResponse:
    """Redirect to the user's tenant (a superuser: the first tenant by name)."""
    tenants = _visible_tenants(request)
    if not tenants:
        if access_for(request.user).role == "superuser":
            return render(request, "dashboard/no_tenants.html", status=200)
        raise Http404("No tenant to show.")
    return HttpResponseRedirect(reverse("dashboard:tenant", args=[tenants[0].pk]))


@require_GET
@login_required(login_url=LOGIN_URL)
def dashboard_tenant(request: HttpRequest, tenant_id: int) -> HttpResponse:
    """The dashboard of one tenant over ``?period=1h|24h|7d`` (default 24h)."""
    if not access_for(request.user).sees(tenant_id):
        raise Http404("No such tenant.")
    tenant = get_object_or_404(Tenant, pk=tenant_id)
    period_key = request.GET.get("period", selectors.DEFAULT_PERIOD)
    period = selectors.PERIODS.get(period_key)
    if period is None:
        return HttpResponseBadRequest(
            f"Unknown period; use one of {', '.join(selectors.PERIODS)}.", content_type="text/plain"
        )
    context = {
        "tenant": tenant,
        "tenants": _visible_tenants(request),
        "period": period,
        "periods": list(selectors.PERIODS.values()),
    }
    try:
        context.update(_panels_within_time(tenant.pk, period))
    except OperationalError:
        context["too_slow"] = QUERY_SECONDS
        return render(request, "dashboard/too_slow.html", context, status=503)
    return render(request, "dashboard/tenant.html", context)


def _panels_within_time(tenant_id: int, period: selectors.Period) -> dict[str, Any]:
    """The panels, each PostgreSQL query cancelled after :data:`QUERY_SECONDS` (a page over an
    audit trail far larger than planned for answers 503 instead of holding a worker)."""
    if connection.vendor != "postgresql":
        return _panels(tenant_id, period)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL statement_timeout = {int(QUERY_SECONDS * 1000)}")
        return _panels(tenant_id, period)


def _panels(tenant_id: int, period: selectors.Period) -> dict[str, Any]:
    summary = selectors.call_summary(tenant_id=tenant_id, period=period, now=timezone.now())
    activity, since = summary.activity, summary.activity.buckets[0]
    latency = selectors.latency_by_target(tenant_id=tenant_id, since=since)
    meters = selectors.meters_near_limits(tenant_id=tenant_id)
    totals = {name: activity.total(name) for name in selectors.SERIES}
    return {
        "totals": totals,
        "denial_percent": 100 * totals["denials"] / totals["calls"] if totals["calls"] else 0.0,
        "activity_chart": charts.time_chart(
            buckets=activity.buckets,
            series=[
                charts.Series("calls", tuple(activity.calls), "calls"),
                charts.Series("denied", tuple(activity.denials), "denials"),
                charts.Series("rate-limited", tuple(activity.rate_limited), "limited"),
                charts.Series("redacted", tuple(activity.redactions), "redactions"),
            ],
            label=f"Calls, denials, rate-limit hits and redactions, {period.label.lower()}",
            time_format=period.time_format,
        ),
        "tools_chart": charts.bar_chart(
            bars=[charts.Bar(row["name"], row["calls"], _denied(row)) for row in summary.tools],
            label="Top tools",
        ),
        "agents_chart": charts.bar_chart(
            bars=[charts.Bar(row["name"], row["calls"], _denied(row)) for row in summary.agents],
            label="Top agents",
            css="agents",
        ),
        "latency_chart": charts.range_chart(
            ranges=[charts.Range(r["target_slug"], r["p50"], r["p95"], r["calls"]) for r in latency],
            label="Latency p50 and p95 per target (ms)",
        ),
        "meters_chart": charts.gauge_chart(
            gauges=[charts.Gauge(m.label, m.used, m.limit, m.note) for m in meters],
            label="Meters, fullest first",
        ),
        "meter_note": next((m.note for m in meters if m.used is None and m.note), ""),
        "denials": selectors.recent_denials(tenant_id=tenant_id, since=since),
    }


def _denied(row: dict[str, Any]) -> str:
    return f"{row['denials']} denied" if row["denials"] else ""
