from django.core.management.base import BaseCommand

from ops.roles import roles_sync


class Command(BaseCommand):
    help = "Create/update the staff groups operator, finance and auditor (also runs after every migrate)."

    def handle(self, *args, **options):
        for role, count in roles_sync().items():
            self.stdout.write(f"  {role}: {count} permission(s)")
        self.stdout.write(self.style.SUCCESS("Roles synced."))
