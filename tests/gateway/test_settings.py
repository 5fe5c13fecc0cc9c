"""Configuration errors stop the gateway at start-up, naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.test import override_settings

from gateway.checks import check_encryption_keys
from gateway.conf import build_gateway_settings
from gateway.crypto import decrypt_secret, encrypt_secret, reset_crypto_cache

ROOT = Path(__file__).resolve().parents[2]


def test_missing_encryption_keys_fail_the_system_check_naming_the_variable():
    with override_settings(GATEWAY_ENCRYPTION_KEYS=[]):
        [error] = check_encryption_keys()
    assert error.id == "gateway.E001" and "GATEWAY_ENCRYPTION_KEYS" in error.msg


def test_an_invalid_encryption_key_fails_the_system_check():
    with override_settings(GATEWAY_ENCRYPTION_KEYS=["not-a-key"]):
        [error] = check_encryption_keys()
    assert error.id == "gateway.E002"


def test_gateway_refuses_to_start_without_keys_when_debug_is_off(tmp_path):
    env = {
        k: v for k, v in os.environ.items() if k not in {"GATEWAY_ENCRYPTION_KEYS", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        DEBUG="0",
        SECRET_KEY="x" * 50,
        ALLOWED_HOSTS="localhost",
        DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "GATEWAY_ENCRYPTION_KEYS is not set" in result.stderr


def test_unknown_or_invalid_gateway_settings_are_refused_by_name():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="MAX_REQUEST_BODY_BYTES"):
        build_gateway_settings({"MAX_REQUEST_BODY_BYTES": -1}, redis_url="", keys=[])
    with pytest.raises(ImproperlyConfigured, match="NOPE"):
        build_gateway_settings({"NOPE": 1}, redis_url="", keys=[])


def test_secrets_encrypted_with_an_old_key_still_decrypt_after_a_new_key_is_added():
    from gateway.conf import gateway_settings

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    try:
        with override_settings(GATEWAY_ENCRYPTION_KEYS=[old]):
            gateway_settings.cache_clear(), reset_crypto_cache()
            stored = encrypt_secret("s3cret")
        with override_settings(GATEWAY_ENCRYPTION_KEYS=[new, old]):
            gateway_settings.cache_clear(), reset_crypto_cache()
            assert decrypt_secret(stored) == "s3cret"
    finally:
        gateway_settings.cache_clear(), reset_crypto_cache()


def production_env(tmp_path, **overrides: str) -> dict[str, str]:
    """A DEBUG-off environment that passes every check, with ``overrides`` applied (``None`` unsets)."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_") and k != "DJANGO_SETTINGS_MODULE"
    }
    env.update(
        DEBUG="0",
        SECRET_KEY="s" * 50,
        ALLOWED_HOSTS="localhost",
        GATEWAY_ENCRYPTION_KEYS="JtK1SvNtAorb16ntL5ZIrN3U0silIHlMv6BBkYLowhM=",
        DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
    )
    env.update(overrides)
    return {k: v for k, v in env.items() if v != "<unset>"}


def manage_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_a_negative_body_limit_fails_the_check_naming_the_variable(tmp_path):
    result = manage_check(production_env(tmp_path, GATEWAY_MAX_REQUEST_BODY_BYTES="-1"))

    assert result.returncode != 0
    assert "gateway.E010" in result.stderr
    assert "GATEWAY_MAX_REQUEST_BODY_BYTES must be at least 1" in result.stderr


def test_a_non_numeric_timeout_fails_the_check_naming_the_variable(tmp_path):
    result = manage_check(production_env(tmp_path, GATEWAY_UPSTREAM_CONNECT_TIMEOUT="soon"))

    assert result.returncode != 0
    assert "GATEWAY_UPSTREAM_CONNECT_TIMEOUT must be a float" in result.stderr


def test_debug_off_without_secret_key_fails_the_check_without_a_traceback(tmp_path):
    result = manage_check(production_env(tmp_path, SECRET_KEY="<unset>"))

    assert result.returncode != 0
    assert "gateway.E004" in result.stderr and "SECRET_KEY is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_off_with_a_short_secret_key_fails_the_check(tmp_path):
    result = manage_check(production_env(tmp_path, SECRET_KEY="short"))

    assert result.returncode != 0
    assert "gateway.E004" in result.stderr


def test_a_complete_production_configuration_passes_the_check(tmp_path):
    result = manage_check(production_env(tmp_path))

    assert result.returncode == 0, result.stderr


HTTPS_SETTINGS = (
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SESSION_COOKIE_SAMESITE",
    "CSRF_COOKIE_SAMESITE",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER",
    "CSRF_TRUSTED_ORIGINS",
)


def effective_settings(env: dict[str, str], names: tuple[str, ...]) -> dict[str, object]:
    """The values ``gateway.settings`` gives ``names`` in a fresh process started with ``env``."""
    import json

    script = (
        "import json, django; from django.conf import settings; django.setup(); "
        f"print(json.dumps({{n: getattr(settings, n) for n in {list(names)!r}}}))"
    )
    env = {**env, "DJANGO_SETTINGS_MODULE": "gateway.settings"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def readme_defaults(names: tuple[str, ...]) -> dict[str, str]:
    """The default column of the README's configuration table for ``names``."""
    rows = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].strip("`") in names:
            rows[cells[0].strip("`")] = cells[1]
    return rows


def as_readme_default(value: object) -> str:
    if value in (None, []):
        return "unset"
    return f"`{str(value).lower() if isinstance(value, bool) else value}`"


def test_https_and_cookie_defaults_with_debug_off_are_what_the_readme_says(tmp_path):
    values = effective_settings(production_env(tmp_path), HTTPS_SETTINGS)
    documented = readme_defaults(HTTPS_SETTINGS)

    assert set(documented) == set(HTTPS_SETTINGS)
    for name in HTTPS_SETTINGS:
        assert documented[name].split(" (")[0] == as_readme_default(values[name]), name
    assert values["SESSION_COOKIE_SECURE"] is True and values["CSRF_COOKIE_SECURE"] is True


def test_cookies_are_not_secure_by_default_with_debug_on(tmp_path):
    values = effective_settings(production_env(tmp_path, DEBUG="1"), HTTPS_SETTINGS)

    assert values["SESSION_COOKIE_SECURE"] is False and values["CSRF_COOKIE_SECURE"] is False
    assert "(`false` with `DEBUG`)" in readme_defaults(("SESSION_COOKIE_SECURE",))["SESSION_COOKIE_SECURE"]


def test_https_settings_are_read_from_the_environment(tmp_path):
    env = production_env(
        tmp_path,
        SECURE_SSL_REDIRECT="1",
        SECURE_HSTS_SECONDS="31536000",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="1",
        SECURE_HSTS_PRELOAD="1",
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
        CSRF_TRUSTED_ORIGINS="https://gw.example.com,https://admin.example.com",
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE="0",
    )

    values = effective_settings(env, HTTPS_SETTINGS)

    assert values["SECURE_SSL_REDIRECT"] is True and values["SECURE_HSTS_SECONDS"] == 31536000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True and values["SECURE_HSTS_PRELOAD"] is True
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["CSRF_TRUSTED_ORIGINS"] == ["https://gw.example.com", "https://admin.example.com"]
    assert values["SESSION_COOKIE_SAMESITE"] == "Strict" and values["SESSION_COOKIE_SECURE"] is False
    assert manage_check(env).returncode == 0


@pytest.mark.parametrize(
    ("variable", "value"),
    [("SESSION_COOKIE_SAMESITE", "lenient"), ("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto")],
)
def test_a_malformed_https_setting_fails_the_check_naming_it(tmp_path, variable, value):
    result = manage_check(production_env(tmp_path, **{variable: value}))

    assert result.returncode != 0
    assert "gateway.E011" in result.stderr and variable in result.stderr


def test_every_gateway_setting_has_a_readme_row_with_its_default():
    from gateway.conf import SPECS

    documented = readme_defaults(tuple(f"GATEWAY_{name}" for name in SPECS))

    for name, spec in SPECS.items():
        cell = documented[f"GATEWAY_{name}"]
        default = "" if cell.startswith("empty") else cell.split("`")[1]
        assert (default if spec.kind is str else spec.kind(default)) == spec.default, name
