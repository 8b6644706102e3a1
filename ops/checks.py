"""Django system checks for the configuration rules in ops.config_check.

Always: the value rules (fee range, amounts, times, alert routes) as errors.
With `manage.py check --deploy`: the production rules too (secrets, DEBUG, ALLOWED_HOSTS,
embedded database/broker) and whether the database and broker answer (not pending migrations:
a deploy checks before it migrates; `validate_config` and `/health` name those).
"""

from django.conf import settings
from django.core import checks

from ops import config_check


def _errors(problems: list[str], prefix: str) -> list[checks.CheckMessage]:
    return [checks.Error(problem, id=f"ops.{prefix}{index:03d}") for index, problem in enumerate(problems, 1)]


@checks.register("ops")
def config_values_check(app_configs=None, **kwargs):
    problems = []
    for rule in (
        config_check.rule_fee,
        config_check.rule_amounts,
        config_check.rule_times,
        config_check.rule_alerts,
        config_check.rule_proxies,
    ):
        problems.extend(rule(settings, False))
    return _errors(problems, "E")


@checks.register("ops", deploy=True)
def config_deploy_check(app_configs=None, **kwargs):
    problems = []
    for rule in [config_check.rule_secrets, config_check.rule_deployment, *config_check.REACHABILITY_RULES]:
        problems.extend(rule(settings, True))
    return _errors(problems, "D")
