import secrets

from django.core.management.base import BaseCommand, CommandError

from betting.models import User
from betting.services import user_create
from common.commands import bounded_int, command_errors
from common.errors import Conflict
from common.money import format_usdc
from common.progress import progress
from withdrawals.services import deposit_credit


def _user_create_only(*, email: str, password: str, is_staff: bool = False) -> User | None:
    """Create the user; None when (two seeds at once) the other seed just created it: its password is
    not ours to print."""
    try:
        return user_create(email=email, password=password, is_staff=is_staff)
    except Conflict as exc:
        if exc.code != "email_taken":
            raise
    return None


def _user_ensure(*, email: str, password: str, is_staff: bool = False) -> User:
    """Create the user, or take the one another seed just created."""
    return _user_create_only(email=email, password=password, is_staff=is_staff) or User.objects.get(email=email)


class Command(BaseCommand):
    help = "Create N bettors (emails printed), optionally funded; --demo also creates the demo superuser."

    def add_arguments(self, parser):
        parser.add_argument(
            "--users",
            type=bounded_int(0, 100_000),
            default=None,
            help="how many bettors to create (default 1; 0 with --demo, so re-running it adds no one)",
        )
        parser.add_argument(
            "--fund", type=bounded_int(0, 10**15), default=0, help="micro-USDC to deposit to each new bettor"
        )
        parser.add_argument("--password", default="", help="password for every new bettor (default: random)")
        parser.add_argument(
            "--demo",
            action="store_true",
            help="also ensure admin@example.com/admin12345 and demo1..3@example.com/demo12345 with 100 USDC each",
        )

    def handle(self, *args, users: int | None, fund: int, password: str, demo: bool, **options):
        if users is None:
            users = 0 if demo else 1
        if users < 0 or users > 100_000:
            raise CommandError("--users must be between 0 and 100000. [invalid_count]")
        if fund < 0:
            raise CommandError("--fund must not be negative. [invalid_amount]")
        with command_errors():
            if demo:
                self._ensure_demo()
            start = User.objects.filter(email__startswith="bettor").count() + 1
            with progress("seed: bettors", users, stream=self.stderr) as advance:
                created = self._create(users=users, fund=fund, password=password, index=start, advance=advance)
        self.stdout.write(self.style.SUCCESS(f"Created {created} bettor(s)."))

    def _create(self, *, users: int, fund: int, password: str, index: int, advance) -> int:
        """Create `users` bettors from bettor<index>@example.com on, printing each; returns how many."""
        created = 0
        while created < users:
            email = f"bettor{index}@example.com"
            index += 1
            if User.objects.filter(email=email).exists():
                continue
            user_password = password or secrets.token_urlsafe(9)
            user = _user_create_only(email=email, password=user_password)
            if user is None:  # a seed running beside this one took the address first: use the next
                continue
            if fund:
                deposit_credit(user=user, amount_u=fund, tx_id=f"seed:{user.pk}", source="cli", reason="seed")
            created += 1
            advance(1)
            line = f"{user.pk} {email} password {user_password}"
            self.stdout.write(line + (f" balance {format_usdc(fund, exact=True)}" if fund else ""))
        return created

    def _ensure_demo(self) -> None:
        """Idempotent: re-running `make run` neither duplicates users nor deposits twice."""
        if not User.objects.filter(email="admin@example.com").exists():
            admin = _user_ensure(email="admin@example.com", password="admin12345", is_staff=True)
            if not admin.is_superuser:
                admin.is_superuser = True
                admin.save(update_fields=["is_superuser"])
        self.stdout.write("superuser admin@example.com password admin12345")
        for index in (1, 2, 3):
            email = f"demo{index}@example.com"
            user = User.objects.filter(email=email).first() or _user_ensure(email=email, password="demo12345")
            deposit_credit(user=user, amount_u=100_000_000, tx_id=f"demo:{email}", source="cli", reason="demo seed")
            self.stdout.write(f"bettor {email} password demo12345")
