"""``GET /metrics``: scraped from a running gateway after real calls through the proxy."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from django.conf import settings as django_settings
from prometheus_client.parser import text_string_to_metric_families

from audit.sink import LAG_MARK_SECONDS, AuditSink
from gateway.conf import gateway_settings
from gateway.metrics import endpoint
from metering.services import meter_create
from tests.conftest import issue_credential, require_service, run
from tests.metering.conftest import post_call
from tests.metering.processes import RedisServer
from tests.metering.test_own_redis import close_meters, meters_on

METRICS_TOKEN = "metrics-token-0123456789-abcdefghij"


def configure(**values: str) -> None:
    django_settings.GATEWAY = {**django_settings.GATEWAY, **values}
    gateway_settings.cache_clear()


@pytest.fixture
def metrics_settings() -> Iterator[None]:
    """Restores the GATEWAY settings (and the cached settings object) the test changed."""
    saved = django_settings.GATEWAY
    yield
    django_settings.GATEWAY = saved
    gateway_settings.cache_clear()


def get_metrics(gateway, **headers: str) -> httpx2.Response:
    return httpx2.get(f"{gateway.url}/metrics", headers=headers, timeout=10)


@pytest.fixture
def scrape(gateway, metrics_settings):
    """Scrape the running gateway with the metrics token; returns the exposition text."""
    configure(METRICS_TOKEN=METRICS_TOKEN)

    def scrape_text() -> str:
        response = get_metrics(gateway, Authorization=f"Bearer {METRICS_TOKEN}")
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return response.text

    return scrape_text


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def target_labels(text: str) -> set[str]:
    return {dict(labels)["target"] for (_name, labels) in samples(text) if "target" in dict(labels)}


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def moved(before: str, after: str, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_scrape_counts_exactly_the_allowed_denied_and_rate_limited_calls_made(
    gateway, scrape, tenant, target
):
    # given: two calls a minute to search; delete_all is not allowed
    issued = issue_credential(tenant, target, "POST /tools/search")
    meter_create(tenant=tenant, credential=issued.credential, kind="request_count", window="minute", limit=2)
    url = gateway.proxy_url("docs")
    before = scrape()
    # when
    statuses = [
        post_call(url, issued.token).status_code,
        post_call(url, issued.token).status_code,
        post_call(url, issued.token, tool="delete_all").status_code,
        post_call(url, issued.token).status_code,
        post_call(url, "not-a-token").status_code,
    ]
    after = scrape()
    # then
    assert statuses == [200, 200, 400, 429, 401]
    calls = "gateway_calls_total"
    assert moved(before, after, calls, target="docs", decision="allowed", status_class="2xx") == 2
    assert moved(before, after, calls, target="docs", decision="denied", status_class="4xx") == 3
    denials = "gateway_denials_total"
    assert moved(before, after, denials, target="docs", reason="scope") == 1
    assert moved(before, after, denials, target="docs", reason="rate_limited") == 1
    assert moved(before, after, denials, target="docs", reason="auth") == 1
    assert moved(before, after, "gateway_meter_refusals_total", reason="limit_reached") == 1
    assert moved(before, after, "gateway_meter_fail_opens_total") == 0
    # only the two allowed calls reached the upstream
    assert moved(before, after, "gateway_upstream_latency_seconds_count", target="docs") == 2
    assert moved(before, after, "gateway_upstream_latency_seconds_bucket", target="docs", le="+Inf") == 2


def test_an_invented_slug_and_the_tokens_presented_never_appear_in_the_metrics(
    gateway, scrape, tenant, target
):
    # given
    issued = issue_credential(tenant, target, "POST /tools/search")
    before = scrape()
    # when: an agent invents slugs, presenting a real token
    statuses = [post_call(gateway.proxy_url(f"invented-{n}"), issued.token).status_code for n in range(3)] + [
        post_call(gateway.proxy_url("docs"), issued.token, tool="no-such-tool-x").status_code
    ]
    after = scrape()
    # then
    assert statuses == [404, 404, 404, 400]
    assert (
        moved(before, after, "gateway_calls_total", target="(none)", decision="error", status_class="4xx")
        == 3
    )
    assert "invented" not in after and "no-such-tool-x" not in after
    assert issued.token not in after and issued.token[:12] not in after and METRICS_TOKEN not in after
    # no new label value but the configured slug and (none)
    assert target_labels(after) - target_labels(before) <= {"docs", "(none)"}


def test_metrics_are_not_served_when_neither_a_token_nor_a_network_is_configured(gateway, metrics_settings):
    configure(METRICS_TOKEN="", METRICS_ALLOW="")

    response = get_metrics(gateway)

    assert response.status_code == 404
    assert "gateway_" not in response.text


def test_a_scrape_without_the_right_token_gets_401(gateway, metrics_settings):
    configure(METRICS_TOKEN=METRICS_TOKEN)

    missing = get_metrics(gateway)
    wrong = get_metrics(gateway, Authorization=f"Bearer {METRICS_TOKEN}x")
    other_scheme = get_metrics(gateway, Authorization=f"Basic {METRICS_TOKEN}")
    right = get_metrics(gateway, Authorization=f"Bearer {METRICS_TOKEN}")

    assert [r.status_code for r in (missing, wrong, other_scheme)] == [401, 401, 401]
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert all("gateway_" not in r.text and METRICS_TOKEN not in r.text for r in (missing, wrong))
    assert right.status_code == 200 and "# TYPE gateway_calls_total counter" in right.text


def test_the_metrics_token_is_compared_in_constant_time(gateway, metrics_settings, monkeypatch):
    # given
    configure(METRICS_TOKEN=METRICS_TOKEN)
    compared: list[tuple[bytes, bytes]] = []
    real_compare = endpoint.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr(endpoint.hmac, "compare_digest", spy)
    # when
    assert get_metrics(gateway, Authorization="Bearer short").status_code == 401
    assert get_metrics(gateway, Authorization=f"Bearer {METRICS_TOKEN}").status_code == 200
    # then: every comparison went through compare_digest, on digests of equal length (no length leak)
    assert len(compared) == 2
    assert all(len(a) == len(b) == 32 for a, b in compared)


def test_a_scrape_from_outside_the_allowed_networks_gets_403_and_from_inside_200(gateway, metrics_settings):
    configure(METRICS_ALLOW="10.0.0.0/8, 192.168.0.0/16")
    outside = get_metrics(gateway)

    configure(METRICS_ALLOW="10.0.0.0/8,127.0.0.0/8")
    inside = get_metrics(gateway)

    assert outside.status_code == 403 and "gateway_" not in outside.text
    assert inside.status_code == 200 and "gateway_audit_lag_events" in inside.text


def test_policy_cache_age_grows_while_warm_and_restarts_when_the_cache_is_emptied(target):
    from policies.cache import PolicyCache

    # given: a cache holding one compiled target, sampled as the runtime does
    cache = PolicyCache()
    assert run(cache.target("docs")) is not None
    time.sleep(0.3)
    warm_age, warm_entries = cache.stats()
    # when: a configuration change empties it
    cache.invalidate()
    emptied_age, emptied_entries = cache.stats()
    # then
    assert warm_age >= 0.3 and warm_entries == 1
    assert emptied_age < 0.1 and emptied_entries == 0


def test_a_scrape_reports_the_policy_cache_and_audit_lag_of_the_process(gateway, scrape, tenant, target):
    issued = issue_credential(tenant, target, "POST /tools/search")
    assert post_call(gateway.proxy_url("docs"), issued.token).status_code == 200
    gateway.flush_audit()

    text = scrape()

    assert value(text, "gateway_audit_lag_events") == 0 and value(text, "gateway_audit_lag_seconds") == 0
    assert ("gateway_policy_cache_entries", frozenset()) in samples(text)
    assert value(text, "gateway_policy_cache_age_seconds") >= 0


def test_audit_lag_counts_events_not_yet_in_the_database_and_the_oldest_ones_age(tmp_path: Path):
    # given: a sink whose writer is not running (as while the database is away)
    sink = AuditSink(batch_size=10, wal_dir=str(tmp_path))
    sink.wal.open()
    try:
        assert sink.lag() == (0, 0.0)
        # when
        for _ in range(3):
            sink.submit({"reason": "x"})
        time.sleep(0.3)
        waiting, oldest = sink.lag()
        # then
        assert waiting == 3
        assert 0.3 <= oldest <= 0.3 + LAG_MARK_SECONDS + 0.2
    finally:
        sink.wal.close()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"METRICS_TOKEN": "short-secret"}, "GATEWAY_METRICS_TOKEN must be 16 or more characters"),
        ({"METRICS_TOKEN": "a token with spaces in it"}, "GATEWAY_METRICS_TOKEN must be 16 or more"),
        ({"METRICS_ALLOW": "10.0.0.0/8,not-a-network"}, "GATEWAY_METRICS_ALLOW: 'not-a-network'"),
    ],
)
def test_a_bad_metrics_setting_stops_the_start_naming_it_but_never_quoting_the_token(values, message):
    from django.core.exceptions import ImproperlyConfigured

    from gateway.conf import build_gateway_settings

    with pytest.raises(ImproperlyConfigured) as raised:
        build_gateway_settings(values, redis_url="", keys=[])

    assert message in str(raised.value)
    assert values.get("METRICS_TOKEN", "\0") not in str(raised.value)


def test_the_metrics_token_is_not_in_the_settings_repr():
    from gateway.conf import build_gateway_settings

    conf = build_gateway_settings({"METRICS_TOKEN": METRICS_TOKEN}, redis_url="", keys=[])

    assert conf.metrics_token == METRICS_TOKEN and METRICS_TOKEN not in repr(conf)


def test_a_metrics_failure_never_fails_the_call_and_is_logged_once(monkeypatch, caplog):
    from types import SimpleNamespace

    from gateway.metrics import recording

    monkeypatch.setattr(recording, "_failed", False)
    monkeypatch.setattr(recording, "_calls", {})
    monkeypatch.setattr(recording.CALLS, "labels", lambda *labels: 1 / 0)  # the files' disk is full ...
    ctx = SimpleNamespace(target=None, status=200, decision="allowed", error_kind="", upstream_seconds=None)

    recording.record_call(ctx)
    recording.record_call(ctx)

    assert [r.message for r in caplog.records] == ["metrics not recorded (logged once per process)"]


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of the test's own, which it may stop."""
    if shutil.which("redis-server") is None:
        require_service("Redis", "redis-server is not installed")
    server = RedisServer().start()
    yield server
    server.stop()


def test_a_redis_outage_counts_fail_opens_and_fail_closed_refusals(
    gateway, scrape, tenant, target, own_redis
):
    # given: an open meter and a closed one, their counters in a Redis that then stops
    lenient = issue_credential(tenant, target, "POST /tools/search", name="lenient")
    strict = issue_credential(tenant, target, "POST /tools/search", name="strict")
    meter_create(tenant=tenant, credential=lenient.credential, kind="request_count", window="minute", limit=9)
    meter_create(
        tenant=tenant,
        credential=strict.credential,
        kind="request_count",
        window="minute",
        limit=9,
        fail_mode="closed",
    )
    meters_on(gateway, own_redis.url)
    url = gateway.proxy_url("docs")
    try:
        own_redis.stop()
        before = scrape()
        # when
        statuses = [post_call(url, lenient.token).status_code for _ in range(3)]
        statuses.append(post_call(url, strict.token).status_code)
        after = scrape()
    finally:
        close_meters(gateway)
    # then
    assert statuses == [200, 200, 200, 503]
    assert moved(before, after, "gateway_meter_fail_opens_total") == 3
    assert moved(before, after, "gateway_meter_refusals_total", reason="store_unavailable") == 1
    assert moved(before, after, "gateway_meter_refusals_total", reason="limit_reached") == 0
    assert (
        moved(before, after, "gateway_calls_total", target="docs", decision="error", status_class="5xx") == 1
    )
    assert (
        moved(before, after, "gateway_calls_total", target="docs", decision="allowed", status_class="2xx")
        == 3
    )
