import secrets

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from betting.models import User
from betting.services import user_create, users_create_many
from common.commands import bounded_int, command_errors
from common.errors import Conflict
from common.money import format_usdc
from common.progress import progress
from withdrawals.services import DepositCredit, deposit_credit, deposits_credit_many

BATCH = 500  # users created (and funded) per transaction: one commit per batch, not per user


def _user_create_only(
    *, email: str, password: str, is_staff: bool = False, password_hash: str | None = None
) -> User | None:
    """Create the user; None when (two seeds at once) the other seed just created it: its password is
    not ours to print."""
    try:
        return user_create(email=email, password=password, is_staff=is_staff, password_hash=password_hash)
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
        parser.add_argument(
            "--password", default="", help="password for every new bettor, hashed once (default: a random one each)"
        )
        parser.add_argument(
            "--unusable-password",
            action="store_true",
            help="bettors who cannot log in (load-test data; their API tokens are made elsewhere)",
        )
        parser.add_argument(
            "--demo",
            action="store_true",
            help="also ensure admin@example.com/admin12345 and demo1..3@example.com/demo12345 with 100 USDC each",
        )

    def handle(
        self, *args, users: int | None, fund: int, password: str, unusable_password: bool, demo: bool, **options
    ):
        if users is None:
            users = 0 if demo else 1
        if users < 0 or users > 100_000:
            raise CommandError("--users must be between 0 and 100000. [invalid_count]")
        if fund < 0:
            raise CommandError("--fund must not be negative. [invalid_amount]")
        if password and unusable_password:
            raise CommandError("Give --password or --unusable-password, not both. [invalid_option]")
        # One hash for every bettor when they share a password (a full hash costs ~0.3 s); none when unusable.
        password_hash = make_password(password) if password else ("!" if unusable_password else None)
        with command_errors():
            if demo:
                self._ensure_demo()
            created = 0
            index = User.objects.filter(email__startswith="bettor").count() + 1
            with progress("seed: bettors", users, stream=self.stderr) as advance:
                while created < users:
                    wanted = min(BATCH, users - created)
                    emails = [f"bettor{number}@example.com" for number in range(index, index + wanted)]
                    index += wanted
                    passwords = [password or ("-" if unusable_password else secrets.token_urlsafe(9)) for _ in emails]
                    made = self._batch_create(emails, passwords, password_hash=password_hash, fund=fund)
                    created += len(made)
                    advance(len(made))
        self.stdout.write(self.style.SUCCESS(f"Created {created} bettor(s)."))

    def _batch_create(
        self, emails: list[str], passwords: list[str], *, password_hash: str | None, fund: int
    ) -> list[User]:
        """One batch in one transaction: its users and cash accounts, then its deposits (set-based, a few statements
        whatever the batch's size). A taken email (an earlier seed, or one running beside this one) is skipped."""
        hashes = [password_hash or make_password(raw) for raw in passwords]  # a random password each: hashed each
        password_of = dict(zip(emails, passwords, strict=True))
        with transaction.atomic():
            made = users_create_many(emails=emails, password_hashes=hashes)
            if fund and made:
                deposits_credit_many(
                    credits=[DepositCredit(user_id=user.pk, amount_u=fund, tx_id=f"seed:{user.pk}") for user in made],
                    source="cli",
                    reason="seed",
                )
        balance = f" balance {format_usdc(fund, exact=True)}" if fund else ""
        if made:
            self.stdout.write(
                "\n".join(f"{user.pk} {user.email} password {password_of[user.email]}{balance}" for user in made)
            )
        return made

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
