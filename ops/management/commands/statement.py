from django.core.management.base import BaseCommand

from betting.selectors import user_get_by_email
from common.commands import command_errors
from ops.statement import period_parse, statement_csv, statement_get, statement_text


class Command(BaseCommand):
    help = (
        "A bettor's statement for a month (America/New_York): opening and closing balance, every cash line "
        "in words, a summary per round. --csv prints it as CSV."
    )

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, metavar="EMAIL")
        parser.add_argument("--month", required=True, metavar="YYYY-MM")
        parser.add_argument("--csv", action="store_true", help="CSV instead of text")

    def handle(self, *args, user: str, month: str, csv: bool, **options):
        with command_errors():
            start, end = period_parse(month=month)
            statement = statement_get(user=user_get_by_email(email=user), start=start, end=end)
        self.stdout.write(statement_csv(statement) if csv else statement_text(statement))
