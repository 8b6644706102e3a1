"""Embedded mode: a laptop, zero configuration."""

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = env.bool("DEBUG", default=True)
SIMULATION_ENABLED = env.bool("SIMULATION_ENABLED", default=True)
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
