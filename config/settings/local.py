"""Embedded mode: a laptop, zero configuration.

DEBUG stays off unless DEBUG=true is set (base): a 500 answers the JSON/plain handlers, never
Django's technical page. ALLOWED_HOSTS (base) already names localhost, and WhiteNoise serves the
static files, so `make run` works and looks right with DEBUG off.
"""

from config.settings.base import *  # noqa: F403
from config.settings.base import env

SIMULATION_ENABLED = env.bool("SIMULATION_ENABLED", default=True)
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
