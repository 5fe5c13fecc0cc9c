"""Test settings: the production settings module, fed a fixed test environment.

``DATABASE_URL`` and ``REDIS_URL`` come from the environment (``dev.py test`` and ``.ci/run`` point
them at the local PostgreSQL and Redis); without them the tests use SQLite and the tests that need
Redis are skipped, unless ``GATEWAY_REQUIRE_SERVICES=1`` turns such skips into failures.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("GATEWAY_ENCRYPTION_KEYS", "JtK1SvNtAorb16ntL5ZIrN3U0silIHlMv6BBkYLowhM=")
os.environ.setdefault("GATEWAY_AUDIT_SIGNING_KEYS", "3q5M0pYqvL3mmHq4m2LcxOB6PHdrN8TAx1n-mSlD3Ss=")
os.environ.setdefault("ALLOWED_HOSTS", "*")
os.environ.setdefault("DEBUG", "0")

# Under pytest-xdist (``dev.py test -n 2``) each worker has its own test database (pytest-django adds
# the worker's name) and, here, its own Redis database: the next one after REDIS_URL's per worker, so
# meters, invalidation broadcasts and Celery queues of one worker never meet another's. Set in the
# environment, so the gateway processes, Celery workers and commands a test starts use it too.
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker.startswith("gw") and os.environ.get("REDIS_URL"):
    _base, _, _db = os.environ["REDIS_URL"].rpartition("/")
    _number = (int(_db) if _db.isdigit() else 0) + 1 + int(_worker[2:])
    os.environ["REDIS_URL"] = f"{_base}/{_number % 16}"

from gateway.settings import *  # noqa: E402, F403
from gateway.settings import BASE_DIR, GATEWAY  # noqa: E402

GATEWAY = {
    **GATEWAY,
    "AUDIT_WAL_DIR": str(BASE_DIR / "var" / f"test-audit-wal-{os.getpid()}"),
    # The tests' upstreams listen on loopback, and DEBUG is off: allow loopback as a deployment would.
    "UPSTREAM_ALLOW": "127.0.0.0/8,::1",
    # Every test agent calls from 127.0.0.1 and many tests fail to authenticate on purpose: the
    # brute-force guard is off unless a test (or a gateway process it starts) turns it on.
    "AUTH_FAILURES_PER_MINUTE": GATEWAY.get("AUTH_FAILURES_PER_MINUTE", "0"),
    # Likewise the OAuth registration throttle (tests/gateway/test_oauth_registration_limits.py turns it on).
    "OAUTH_REGISTRATIONS_PER_HOUR": GATEWAY.get("OAUTH_REGISTRATIONS_PER_HOUR", "0"),
}
LOGGING = {"version": 1, "disable_existing_loggers": False}  # pytest captures logs itself
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Admin pages render without a collectstatic run; test_serve.py covers the production storage.
# ... and WhiteNoise serves them from the apps (as with DEBUG), so a browser test's pages are styled.
WHITENOISE_USE_FINDERS = True
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # One file per test run, so two runs on one machine never share (and destroy) a database.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test-{os.getpid()}.sqlite3")}  # noqa: F405
# The JWT tests serve their JWKS from a loopback HTTP server (gateway/jwt_keys.py).
JWKS_ALLOW_LOOPBACK_HTTP = True
