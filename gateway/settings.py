"""Settings, all read from the environment (django-environ).

With no environment at all the gateway runs on the embedded default: a SQLite file, no Redis,
no Celery broker. PostgreSQL (``DATABASE_URL``) and Redis (``REDIS_URL``) are the production setup.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from datetime import timedelta
from pathlib import Path

import environ
from cryptography.fernet import Fernet
from django.core.management.utils import get_random_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)

_DEV_SECRET_FILE = BASE_DIR / ".dev-secret-key"
_DEV_KEY_FILE = BASE_DIR / ".dev-encryption-key"
_DEV_SIGNING_KEY_FILE = BASE_DIR / ".dev-audit-signing-key"


def _dev_file_value(path: Path, make: object) -> str:
    """Return the value kept in a git-ignored development file, creating it once."""
    if path.exists():
        return path.read_text().strip()
    value = make() if callable(make) else str(make)
    path.write_text(value + "\n")
    path.chmod(0o600)
    sys.stderr.write(
        f"\n*** WARNING: DEBUG is on and no key was set: generated {path.name} for development only. ***\n"
        "*** Never run production with it: set SECRET_KEY / GATEWAY_ENCRYPTION_KEYS /"
        " GATEWAY_AUDIT_SIGNING_KEYS instead. ***\n\n"
    )
    return value


SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY and DEBUG:
    SECRET_KEY = _dev_file_value(_DEV_SECRET_FILE, get_random_secret_key)

# Comma-separated Fernet keys: the first encrypts, every key decrypts (see gateway/crypto.py).
GATEWAY_ENCRYPTION_KEYS = env.list("GATEWAY_ENCRYPTION_KEYS", default=[])
if not GATEWAY_ENCRYPTION_KEYS and DEBUG:
    GATEWAY_ENCRYPTION_KEYS = [_dev_file_value(_DEV_KEY_FILE, lambda: Fernet.generate_key().decode())]


def _new_audit_signing_key() -> str:
    import base64
    import os

    return base64.urlsafe_b64encode(os.urandom(32)).decode()


# Comma-separated Ed25519 keys (base64url seeds): the first signs audit seals, every key verifies
# (see audit/signing.py). Without it, and without DEBUG, events are not sealed (warning gateway.W002).
GATEWAY_AUDIT_SIGNING_KEYS = env.list("GATEWAY_AUDIT_SIGNING_KEYS", default=[])
if not GATEWAY_AUDIT_SIGNING_KEYS and DEBUG:
    GATEWAY_AUDIT_SIGNING_KEYS = [_dev_file_value(_DEV_SIGNING_KEY_FILE, _new_audit_signing_key)]

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"].setdefault("CONN_MAX_AGE", 0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default: WAL lets the background audit writer and readers work side by side;
    # synchronous=NORMAL (safe with WAL) spares an fsync per commit.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault(
        "init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 20)
    DATABASES["default"].setdefault("TEST", {"NAME": str(BASE_DIR / "var" / "test.sqlite3")})

(BASE_DIR / "var").mkdir(exist_ok=True)  # SQLite files, audit write-ahead files

REDIS_URL = env.str("REDIS_URL", default="")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc, served as the gateway's own static files
    "axes",
    "gateway.apps.GatewayConfig",
    "oauth2_provider",
    "gateway.oauth.apps.OAuthConfig",
    "policies",
    "metering",
    "audit",
    "dashboard",
]

# Every middleware here is async-capable, so Django never runs the chain of an admin, API or probe
# request in a thread (a test asserts it); the proxy (/mcp/) bypasses this stack (gateway/asgi.py).
MIDDLEWARE = [
    "gateway.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's CSS and JS) before anything that touches sessions or the database.
    "gateway.static_files.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lock-out into its 429 page
]

ROOT_URLCONF = "gateway.urls"
APPEND_SLASH = False
ASGI_APPLICATION = "gateway.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# Admin login throttling (django-axes): after AXES_FAILURE_LIMIT failed logins an account is locked
# out from every address, and an address is locked out for every account, until AXES_COOLOFF_MINUTES
# pass (or ``manage axes_reset``). A successful login first clears that account's and that address's
# failures. The address is the TCP peer's (REMOTE_ADDR): no X-Forwarded-For is trusted.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "gateway.roles.RoleBackend",  # tenant admins' and reviewers' permissions (gateway/roles.py)
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
# ``manage.py serve`` collects static files here at start-up (``--no-collectstatic`` skips it).
STATIC_ROOT = env.path("STATIC_ROOT", default=str(BASE_DIR / "var" / "static"))
# WhiteNoise serves them: names carry a content hash (cached for a year, immutable) and gzip
# variants are built once by collectstatic. With DEBUG on, files come straight from the apps.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
with contextlib.suppress(OSError):  # WhiteNoise warns about a missing directory; serve reports errors
    Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)
# Under ASGI Django reads a file response's (sync) iterator in a thread and warns on each one; the
# admin's static files are small, so that is fine and the warning would only flood the log.
warnings.filterwarnings(
    "ignore",
    message="StreamingHttpResponse must consume synchronous iterators",
    module=r"django\.core\.handlers\.asgi",
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# HTTPS and cookies (README "Configuration"). With DEBUG off the admin's cookies are Secure; HSTS,
# the HTTPS redirect and trusting a proxy's scheme header are opt-in. They apply to what Django
# serves (admin, API, probes); the proxy (/mcp/) answers agents directly and is never redirected.
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True  # the admin posts plain forms; no script needs to read the token
SESSION_COOKIE_SAMESITE = env.str("SESSION_COOKIE_SAMESITE", default="Lax")
CSRF_COOKIE_SAMESITE = env.str("CSRF_COOKIE_SAMESITE", default="Lax")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# Load balancers probe, and Prometheus scrapes, over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# "HTTP_X_FORWARDED_PROTO,https": only behind a proxy that always sets (never passes on) that header.
# A malformed value is kept as the raw string, for the system check gateway.E011 to name it.
_proxy_ssl_header = env.str("SECURE_PROXY_SSL_HEADER", default="")
SECURE_PROXY_SSL_HEADER = (
    tuple(part.strip() for part in _proxy_ssl_header.split(","))
    if len(_proxy_ssl_header.split(",")) == 2
    else (_proxy_ssl_header or None)
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_TASK_ALWAYS_EAGER = not (REDIS_URL or env.str("CELERY_BROKER_URL", default=""))
CELERY_TASK_IGNORE_RESULT = True
# Usage rollups and audit seals every minute (metering/tasks.py, audit/tasks.py); without a broker
# the gateway runs both itself.
CELERY_BEAT_SCHEDULE = {
    "rollup-usage": {"task": "metering.rollup_usage", "schedule": 60.0},
    "seal-audit": {"task": "audit.seal", "schedule": 60.0},
}


# The gateway's own settings object: every GATEWAY_<KEY> of gateway/conf.py's SPECS, passed through
# as the raw string; gateway/conf.py converts and range-checks it (system check gateway.E010).
def _gateway_from_environment() -> dict[str, str]:
    from gateway.conf import SPECS

    values = {name: env.str(f"GATEWAY_{name}") for name in SPECS if f"GATEWAY_{name}" in env.ENVIRON}
    values.setdefault("AUDIT_WAL_DIR", str(BASE_DIR / "var" / "audit-wal"))
    values.setdefault("SIEM_FILE_DIR", str(BASE_DIR / "var" / "siem"))
    values.setdefault("EXPORT_DIR", str(BASE_DIR / "var" / "exports"))
    return values


GATEWAY = _gateway_from_environment()


def _beat_seconds(raw: str | None, default: float) -> float:
    """A beat interval from a raw GATEWAY value; a bad one falls back (check gateway.E010 names it)."""
    try:
        return max(float(raw), 0.05) if raw else default
    except ValueError:
        return default


# SIEM delivery as often as GATEWAY_SIEM_POLL_SECONDS (an expired run is dropped, never queued up), and
# audit retention hourly (audit/tasks.py).
CELERY_BEAT_SCHEDULE["deliver-siem"] = {
    "task": "audit.siem_deliver",
    "schedule": _beat_seconds(GATEWAY.get("SIEM_POLL_SECONDS"), 1.0),
    "options": {"expires": 30.0},
}
CELERY_BEAT_SCHEDULE["audit-retention"] = {"task": "audit.retention", "schedule": 3600.0}
CELERY_BEAT_SCHEDULE["oauth-prune-unconsented"] = {
    "task": "gateway.oauth_prune_unconsented",
    "schedule": 3600.0,
}

# Django's caches: "throttle" holds counts every gateway process must share (the OAuth registration
# limit, gateway/oauth/throttle.py): in Redis when REDIS_URL is set, else in this process's memory.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "throttle": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "gw"}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle"}
    ),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "gateway.jsonlog.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "httpx2": {"level": "WARNING"},
        "httpcore2": {"level": "WARNING"},
        "axes.apps": {"level": "WARNING"},  # not a start-up banner on every command
    },
}
# Bodies of the admin, API and OAuth requests (gateway/body_limit.py refuses larger ones with 413 before
# Django reads them); the proxy bounds its own with GATEWAY_MAX_REQUEST_BODY_BYTES.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"  # one-time tokens stay server-side


# The OAuth 2.1 authorization server for the proxy URLs (django-oauth-toolkit; gateway/oauth/). Its
# lifetimes come from GATEWAY_OAUTH_* (gateway/conf.py); every RFC 9700 hardening is on: PKCE with
# S256 only, no implicit or password grant, access and refresh tokens stored as SHA-256 digests only,
# refresh tokens rotated (a reused one revokes its family), RFC 9207 ``iss`` in every redirect.
def _oauth_provider_settings() -> dict[str, object]:
    from django.core.exceptions import ImproperlyConfigured

    from gateway.conf import DEFAULTS, convert

    lifetimes = {}
    for name in ("OAUTH_ACCESS_TOKEN_SECONDS", "OAUTH_REFRESH_TOKEN_SECONDS"):
        try:
            lifetimes[name] = convert(name, GATEWAY.get(name, DEFAULTS[name]))
        except ImproperlyConfigured:  # the system check gateway.E010 names the variable at start-up
            lifetimes[name] = DEFAULTS[name]
    access, refresh = lifetimes["OAUTH_ACCESS_TOKEN_SECONDS"], lifetimes["OAUTH_REFRESH_TOKEN_SECONDS"]
    return {
        "OAUTH2_VALIDATOR_CLASS": "gateway.oauth.validators.GatewayOAuth2Validator",
        "SCOPES_BACKEND_CLASS": "gateway.oauth.scopes.GatewayScopes",
        "SCOPES": {"mcp": "Every call the credential's rules allow"},
        "DEFAULT_SCOPES": ["mcp"],
        "ACCESS_TOKEN_GENERATOR": "gateway.oauth.tokens.generate_access_token",
        "REFRESH_TOKEN_GENERATOR": "gateway.oauth.tokens.generate_refresh_token",
        "ACCESS_TOKEN_EXPIRE_SECONDS": access,
        "REFRESH_TOKEN_EXPIRE_SECONDS": refresh,
        "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
        "ROTATE_REFRESH_TOKEN": True,
        "REFRESH_TOKEN_REUSE_PROTECTION": True,
        "PKCE_REQUIRED": True,
        "ALLOWED_REDIRECT_URI_SCHEMES": ["http", "https"],
        "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
        "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
        "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
        "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
        "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
        "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
        "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
        "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
        "OAUTH2_GRANT_TYPES_SUPPORTED": ["authorization_code", "client_credentials", "refresh_token"],
        "OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": ["client_secret_basic", "client_secret_post", "none"],
        # Registration is open at the endpoint; whether a tenant accepts such a client is decided at
        # consent (Tenant.oauth_allow_dcr / oauth_allow_cimd), see gateway/oauth/registration.py.
        "DCR_ENABLED": True,
        "DCR_REGISTRATION_PERMISSION_CLASSES": ("gateway.oauth.registration.TenantAllowsDcr",),
        "CIMD_ENABLED": True,
        "CIMD_REGISTRATION_PERMISSION_CLASSES": ("gateway.oauth.registration.TenantAllowsCimd",),
        "CIMD_METADATA_FETCHER": "gateway.oauth.cimd.EgressMetadataFetcher",
        "CIMD_FETCH_TIMEOUT_SECONDS": 5,
        "CIMD_MAX_DOCUMENT_SIZE": 16 * 1024,
    }


OAUTH2_PROVIDER = _oauth_provider_settings()
# django-oauth-toolkit's own models (named, so a migration can depend on them as swappable settings).
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"  # noqa: S105 - a model name
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"  # noqa: S105 - a model name
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"  # noqa: S105 - a model name

# The REST API (README "API"): user API tokens or the dashboard's session (CSRF), role permissions
# confined to the caller's tenant, cursor pages, one error body, an OpenAPI 3 schema at /api/schema/.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "gateway.api.authentication.ApiTokenAuthentication",
        "gateway.api.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["gateway.api.permissions.RolePermissions"],
    "DEFAULT_PAGINATION_CLASS": "gateway.api.pagination.IdCursorPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "gateway.api.schema.GatewayAutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "gateway.api.errors.api_exception_handler",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MCP security gateway API",
    "DESCRIPTION": "Tenants, targets, credentials, rules, meters, protections, tool approvals, audit, usage.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
}
