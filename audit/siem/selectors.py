"""Reads of the SIEM streaming: each sink with where its delivery stands (never its secret)."""

from __future__ import annotations

from typing import Any

from audit.models import SiemSink, SiemSinkState


def siem_sink_list(*, tenant_id: int | None = None) -> list[dict[str, Any]]:
    """Every sink (of ``tenant_id`` if given), tenants and names in order, with its delivery state."""
    sinks = SiemSink.objects.select_related("tenant").order_by("tenant__name", "name")
    if tenant_id is not None:
        sinks = sinks.filter(tenant_id=tenant_id)
    states = {state.pk: state for state in SiemSinkState.objects.filter(sink__in=sinks)}
    return [siem_sink_summary(sink, states.get(sink.pk)) for sink in sinks]


def siem_sink_summary(sink: SiemSink, state: SiemSinkState | None) -> dict[str, Any]:
    """What an operator sees of a sink: its settings, whether a secret is set, and its delivery."""
    summary: dict[str, Any] = {
        "id": sink.pk,
        "tenant": sink.tenant.name,
        "name": sink.name,
        "kind": sink.kind,
        "enabled": sink.enabled,
        "settings": sink.settings,
        "has_secret": sink.has_secret,
    }
    fields = ("cursor", "backlog", "delivered", "failures", "last_error")
    times = ("last_success_at", "last_attempt_at", "next_attempt_at")
    summary.update({name: getattr(state, name) if state else None for name in fields + times})
    return summary
