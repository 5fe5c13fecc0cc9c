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
