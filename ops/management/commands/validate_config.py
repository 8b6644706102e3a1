from django.core.management.base import BaseCommand, CommandError

from ops.config_check import config_problems, deployment_default


class Command(BaseCommand):
    help = (
        "Check every setting (ranges, times, secrets, hosts, DEBUG, database and broker reachable); list each problem."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--deployment",
            choices=["development", "production"],
            default=None,
            help="judge the settings as this deployment (default: from DJANGO_SETTINGS_MODULE)",
        )
        parser.add_argument("--no-connect", action="store_true", help="skip the database/broker reachability checks")

    def handle(self, *args, deployment: str | None, no_connect: bool, **options):
        deployment = deployment or deployment_default()
        problems = config_problems(deployment=deployment, connections=not no_connect)
        self.stdout.write(f"Validating configuration for {deployment}:")
        for problem in problems:
            self.stdout.write(f"  - {problem}")
        if problems:
            raise CommandError(f"Configuration has {len(problems)} problem(s); see the list above. [config_invalid]")
        self.stdout.write(self.style.SUCCESS("Configuration OK."))
