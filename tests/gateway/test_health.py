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


def test_readyz_is_503_naming_the_check_when_secret_key_is_missing(gateway, settings):
    settings.SECRET_KEY = ""

    response = httpx2.get(f"{gateway.url}/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["configuration"].startswith("invalid: gateway.E004")
    assert response.json()["checks"]["database"] == "ok"


def test_readyz_is_503_on_an_invalid_encryption_key_without_showing_it(gateway, settings):
    settings.GATEWAY_ENCRYPTION_KEYS = ["not-a-fernet-key-but-maybe-a-secret"]

    response = httpx2.get(f"{gateway.url}/readyz")

    assert response.status_code == 503
    assert "gateway.E002" in response.json()["checks"]["configuration"]
    assert "maybe-a-secret" not in response.text


def test_readyz_is_503_on_an_out_of_range_gateway_setting(gateway, settings):
    settings.GATEWAY = {**settings.GATEWAY, "MAX_REQUEST_BODY_BYTES": "-1"}

    response = httpx2.get(f"{gateway.url}/readyz")

    assert response.status_code == 503
    assert "GATEWAY_MAX_REQUEST_BODY_BYTES" in response.json()["checks"]["configuration"]


def test_readyz_reports_a_valid_configuration_as_ok(gateway):
    response = httpx2.get(f"{gateway.url}/readyz")

    assert response.json()["checks"]["configuration"] == "ok"


def test_every_django_middleware_is_async_capable_so_probes_and_admin_never_hop_to_a_thread(settings):
    from django.utils.module_loading import import_string

    sync_only = [
        name for name in settings.MIDDLEWARE if not getattr(import_string(name), "async_capable", False)
    ]

    assert sync_only == []
