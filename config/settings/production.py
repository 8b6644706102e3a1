"""Production: PostgreSQL + Redis/RabbitMQ, N web processes, N workers, one beat.

Refuses to start without its secrets.
"""

from config.settings.base import *  # noqa: F403
from config.settings.base import REST_FRAMEWORK, env

DEBUG = False
SECRET_KEY = env.str("SECRET_KEY")
DEPOSIT_WEBHOOK_SECRET = env.str("DEPOSIT_WEBHOOK_SECRET")
DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.postgresql"
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL")
SIMULATION_ENABLED = env.bool("SIMULATION_ENABLED", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
# Required: how many proxies of ours append to X-Forwarded-For (0 if none). Guessing wrong either trusts
# a client-written header (login throttle and lockout bypassed) or blames the proxy for every client.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT")
REST_FRAMEWORK = {**REST_FRAMEWORK, "NUM_PROXIES": TRUSTED_PROXY_COUNT}
# `python manage.py collectstatic --noinput` at deploy fills STATIC_ROOT; WhiteNoise serves it.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=False)

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")

# The token endpoint's throttle (and any other rate limit) must be shared by every web process
# and machine: a per-process LocMemCache would multiply the allowed password guesses by N.
# CACHE_URL (e.g. redis://redis:6379/1); by default the Redis broker's server, database 1.
_broker = env.str("CELERY_BROKER_URL")
CACHE_URL = env.str(
    "CACHE_URL", default=_broker.rsplit("/", 1)[0] + "/1" if _broker.startswith(("redis://", "rediss://")) else ""
)
if CACHE_URL:
    CACHES = {"default": {"BACKEND": "common.cache.RedisCache", "LOCATION": CACHE_URL}}
    ROUND_SUMMARY_CACHE = env.bool("ROUND_SUMMARY_CACHE", default=True)  # shared by every web process
