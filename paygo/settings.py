"""Settings for the payGO back office, read from the environment.

With no environment at all it runs embedded: SQLite in the project folder and Celery
tasks executed in-process. ``DATABASE_URL`` and ``CELERY_BROKER_URL`` switch it to
PostgreSQL, Redis and real workers without any other change.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", default=False)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off (see README, 'Running in production')."
        )
    # Development only: DEBUG is on, so this key never protects real data.
    SECRET_KEY = "django-insecure-development-only-key-not-for-production"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    # First, so its templates override the admin's (site header, dashboard, reports).
    "paygo",
    "paygo.admin_site.PaygoAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "django_filters",
    "django_celery_beat",
    "simple_history",
    "axes",
    "nodes",
    "inventory",
    "billing",
    "sales",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, as django-axes asks: it locks out brute force on the admin login.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "paygo.urls"

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
            ],
        },
    },
]

WSGI_APPLICATION = "paygo.wsgi.application"

# --- Database -------------------------------------------------------------------------
# Embedded default: a SQLite file tuned for several terminals posting at once. WAL lets
# readers run beside the writer, IMMEDIATE transactions take the write lock up front
# (no deadlock on lock upgrade), and the busy timeout makes writers queue instead of
# answering "database is locked".
SQLITE_PATH = os.environ.get("PAYGO_SQLITE_PATH", str(BASE_DIR / "db.sqlite3"))
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": SQLITE_PATH,
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": (
                    "PRAGMA journal_mode=WAL;"
                    "PRAGMA synchronous=NORMAL;"
                    "PRAGMA busy_timeout=30000;"
                    "PRAGMA foreign_keys=ON;"
                ),
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# --- Language and time ----------------------------------------------------------------
LANGUAGE_CODE = "es-co"
LANGUAGES = [("es-co", "Español (Colombia)"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "America/Bogota"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Where collectstatic writes (WhiteNoise serves it from there).
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT") or BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

LOGIN_URL = "admin:login"

# --- Security (effective whenever DEBUG is off) ----------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# A 500-sale batch with five lines each is about 400 kB; 5 MB leaves room and refuses abuse.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("PAYGO_MAX_REQUEST_BYTES", 5 * 1024 * 1024))

# --- django-axes: brute-force protection of the admin login ----------------------------
AXES_FAILURE_LIMIT = int(os.environ.get("PAYGO_ADMIN_LOGIN_FAILURE_LIMIT", 5))
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLED = env_bool("PAYGO_AXES_ENABLED", default=True)

# --- REST API -----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["nodes.authentication.TerminalKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["nodes.authentication.IsTerminal"],
    "DEFAULT_THROTTLE_CLASSES": ["nodes.authentication.TerminalRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["paygo.renderers.ORJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["paygo.renderers.ORJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "paygo.errors.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "terminal": os.environ.get("PAYGO_TERMINAL_RATE", "600/min"),
        "terminal_auth_failure": os.environ.get("PAYGO_AUTH_FAILURE_RATE", "30/min"),
    },
    "UNAUTHENTICATED_USER": None,
    # How many reverse proxies append to X-Forwarded-For in front of the app. 0 (default):
    # the socket address identifies the client, so a forged header cannot dodge the
    # per-address throttles. Behind nginx/a load balancer set it to 1 (or more).
    "NUM_PROXIES": int(os.environ.get("PAYGO_NUM_PROXIES", "0")),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "payGO POS sync API",
    "DESCRIPTION": "Contract between POS terminals, kiosks and kitchen clients and the payGO back office.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # The schema and its docs are public: no key needed, and a bad key does not hide them.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Stable, specific enum names (generic ones like "KindEnum" collide as endpoints grow).
    "ENUM_NAME_OVERRIDES": {
        "TerminalKindEnum": "nodes.models.TerminalKind",
        "NumberingLevelEnum": "nodes.models.NumberingLevel",
        "OfflineInvoiceNumberingEnum": [("local", "local"), ("deferred", "deferred")],
        "OfflineComandasEnum": [("deferred", "deferred")],
        # Several payloads have a "status"; each set of choices gets its own name.
        "ComandaStatusEnum": "sales.models.ComandaStatus",
        "SaleResultStatusEnum": [("accepted", "accepted"), ("duplicate", "duplicate"), ("rejected", "rejected")],
    },
}

# --- Cache (throttling counters) ----------------------------------------------------------
REDIS_CACHE_URL = os.environ.get("PAYGO_CACHE_URL", "")
if REDIS_CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_CACHE_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery -------------------------------------------------------------------------
# Without a broker, tasks run in-process right after the commit that enqueued them.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = env_bool("PAYGO_EAGER_PROPAGATES", default=False)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing must not hang an upload when Redis is down: fail fast, the sweep catches up.
# visibility_timeout: with late acks, Redis hands an unacknowledged task (its worker died)
# to another worker after this long. It must exceed the hard time limit, or a task still
# running would be delivered twice; the default (one hour) would leave it stuck that long.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "socket_timeout": 2,
    "visibility_timeout": 2 * CELERY_TASK_TIME_LIMIT,
}
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# How often beat enqueues the sweep of unreconciled sales (seconds; tests shorten it).
PAYGO_SWEEP_SECONDS = float(os.environ.get("PAYGO_SWEEP_SECONDS", 60))
if PAYGO_SWEEP_SECONDS <= 0:
    raise ImproperlyConfigured("PAYGO_SWEEP_SECONDS must be a positive number of seconds.")
CELERY_BEAT_SCHEDULE = {
    "sweep-unreconciled-sales": {"task": "sales.tasks.unreconciled_sales_sweep", "schedule": PAYGO_SWEEP_SECONDS},
    "verify-ledgers": {"task": "inventory.tasks.ledgers_verify", "schedule": 60.0 * 60},
    # Offline sales reconciled while their range was exhausted, expired or missing.
    "number-pending-invoices": {"task": "billing.tasks.invoices_pending_assign", "schedule": 5.0 * 60},
}
CELERY_TIMEZONE = TIME_ZONE

# --- payGO ----------------------------------------------------------------------------
# A sale whose occurred_at is this far from the time it reached us is flagged clock_skew.
PAYGO_CLOCK_SKEW_TOLERANCE = timedelta(minutes=int(os.environ.get("PAYGO_CLOCK_SKEW_MINUTES", 10)))
PAYGO_MAX_BATCH_SALES = 500
# The sweep re-enqueues sales still unreconciled this long after they arrived.
PAYGO_SWEEP_MIN_AGE = timedelta(seconds=int(os.environ.get("PAYGO_SWEEP_MIN_AGE_SECONDS", 60)))
# A terminal not heard from for this long is shown as silent in the sync-status report.
PAYGO_TERMINAL_SILENT_AFTER = timedelta(minutes=int(os.environ.get("PAYGO_TERMINAL_SILENT_MINUTES", 15)))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("PAYGO_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
