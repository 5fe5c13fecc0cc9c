"""Operations endpoints."""

import httpx2

from tests.conftest import require_service


def test_healthz_answers_and_carries_a_request_id(gateway):
    response = httpx2.get(f"{gateway.url}/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert len(response.headers["X-Request-ID"]) == 32


def test_readyz_checks_the_database_and_redis_when_configured(gateway, settings):
    response = httpx2.get(f"{gateway.url}/readyz")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    if settings.REDIS_URL:
        assert checks["redis"] == "ok"


def test_readyz_is_503_when_redis_is_unreachable(gateway, settings):
    if not settings.REDIS_URL:
        require_service("Redis", "REDIS_URL is not set")
    from gateway.conf import gateway_settings
    from tests.servers import free_port

    original = gateway_settings()
    try:
        gateway_settings.cache_clear()
        settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
        response = httpx2.get(f"{gateway.url}/readyz")
    finally:
        gateway_settings.cache_clear()
    assert original.redis_url
    assert response.status_code == 503
    assert response.json()["checks"]["redis"].startswith("unavailable")
