"""Embedded mode: a laptop, zero configuration.

DEBUG stays off unless DEBUG=true is set (base): a 500 answers the JSON/plain handlers, never
Django's technical page. ALLOWED_HOSTS (base) already names localhost, and WhiteNoise serves the
static files, so `make run` works and looks right with DEBUG off.
"""

import os

from config.settings.base import *  # noqa: F403
from config.settings.base import VAR_DIR, env

# Embedded mode: web, worker and every manage.py command share one prometheus_client multiprocess directory
# (scripts/run-all.sh empties it at start), so a settlement counted in the worker or in `settle_round` reaches
# the web's /metrics. Set before any app imports prometheus_client (settings load first).
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    (VAR_DIR / "prometheus").mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(VAR_DIR / "prometheus")
PROMETHEUS_MULTIPROC_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"]

SIMULATION_ENABLED = env.bool("SIMULATION_ENABLED", default=True)
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
