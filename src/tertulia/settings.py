"""Django settings, all read from the environment through tertulia.config."""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

from tertulia import config

BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = config.var_dir()

SECRET_KEY = config.secret_key()
TERTULIA_DATA_KEYS = config.data_keys()
DEBUG = os.environ.get("DEBUG", "").lower() in {"1", "true", "yes"}
ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_tasks",
    "django_tasks_db",
    "tertulia.core",
    "tertulia.programs",
    "tertulia.cohorts",
    "tertulia.messaging",
    "tertulia.simulation",
    "tertulia.dashboard",
    # Recruitment before safety: it leaves a risky message to triage (which holds it), and it
    # must take a partner's name and number out of his message before triage would quote them
    # in an alert. It never relays anything.
    "tertulia.recruitment",
    # Safety before community: its triage must run (and hold a message) before any relay.
    "tertulia.safety",
    "tertulia.community",
    "tertulia.randomization",
]

MIDDLEWARE = [
    # Signed provider webhooks go straight to their views (messaging/middleware.py).
    "tertulia.messaging.middleware.WebhookShortcut",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "tertulia.urls"
WSGI_APPLICATION = "tertulia.wsgi.application"

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]

DATABASES = {"default": dj_database_url.parse(config.database_url(), conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web app read while the embedded worker writes.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = config.redis_url()
if REDIS_URL:
    import redis

    # One connection pool per process: django-rq otherwise opens a new connection for every
    # enqueue, which cost the webhook view ~5 ms a request (bench/inbound.py).
    _rq_pool = redis.ConnectionPool.from_url(REDIS_URL)
    # "interactive": work a person waits for (routing his message, sending its answers), which
    # workers take before "default" (RQ has no priorities; see messaging.tasks).
    RQ_QUEUES = {
        name: {
            "HOST": "",
            "PORT": 0,
            "REDIS_CLIENT_KWARGS": {"connection_pool": _rq_pool},
            "DEFAULT_TIMEOUT": 600,
        }
        for name in ("interactive", "default")
    }
    TASKS = {
        "default": {
            "BACKEND": "django_tasks_rq.RQBackend",
            "QUEUES": ["interactive", "default"],
        }
    }
    INSTALLED_APPS.append("django_rq")
else:
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "es"
LANGUAGES = [("es", _("Spanish")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "America/Lima"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns at start-up when it is missing
MEDIA_ROOT = VAR_DIR / "media"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "login"

TERTULIA_REPORTS_DIR = VAR_DIR / "reports"
# The program a new number is screened for when his first message names no ad (blank: only
# men who come from an ad variant are screened; the others wait for a person).
TERTULIA_RECRUITMENT_PROGRAM = os.environ.get("TERTULIA_RECRUITMENT_PROGRAM", "")
# The trial that men who finish the baseline are randomized into (its name); default: the last.
TERTULIA_TRIAL = os.environ.get("TERTULIA_TRIAL", "")
TERTULIA_CONTENT_DIR = Path(os.environ.get("TERTULIA_CONTENT_DIR", Path.cwd() / "content"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"refusals": {"()": "tertulia.core.logs.RefusalsWithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
    "loggers": {
        "tertulia": {"level": os.environ.get("LOG_LEVEL", "INFO"), "propagate": True},
        "django.request": {"filters": ["refusals"], "propagate": True},
    },
}
