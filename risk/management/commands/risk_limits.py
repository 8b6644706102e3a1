from datetime import datetime, time

from django.core.management.base import BaseCommand, CommandError

from betting.selectors import user_get_by_email
from common.commands import actor_from_options, add_actor_argument, command_errors, parse_amount_u
from common.money import usdc_number
from marketdata.selectors import market_timezone
from marketdata.services import date_parse
from risk.selectors import house_limits_get, risk_limits_row, user_limits_in_force
from risk.services import LIMIT_FIELDS, risk_limits_set, user_limit_set


def _limit_value(name: str, text: str) -> int | None:
    if text.strip().lower() in ("none", "off", "-"):
        if not LIMIT_FIELDS.get(name, False):
            raise CommandError(f"{name} cannot be switched off; give a whole number.")
        return None
    return parse_amount_u(text, allow_zero=name == "side_ratio_floor_u")


def _show(amount_u: int | None) -> str:
    return "no limit" if amount_u is None else f"{amount_u} u ({usdc_number(amount_u)} USDC)"


class Command(BaseCommand):
    help = (
        "Show or change the risk limits (effective on the next bet, no restart). "
        "--set NAME=VALUE (VALUE in u, or 'none' for no limit) with --reason; "
        "or a per-user override: --user EMAIL --until YYYY-MM-DD [--max-stake-u N] [--max-user-round-u N] "
        "[--max-user-day-u N] --reason."
    )

    def add_arguments(self, parser):
        parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help=", ".join(LIMIT_FIELDS))
        parser.add_argument("--reason", default="", help="why (required for a change; audited)")
        parser.add_argument("--user", default="", metavar="EMAIL", help="a per-user override for this bettor")
        parser.add_argument("--until", default="", metavar="YYYY-MM-DD", help="the override ends at 00:00 ET that day")
        for name in ("max-stake-u", "max-user-round-u", "max-user-day-u"):
            parser.add_argument(f"--{name}", default=None, metavar="U")
        add_actor_argument(parser)

    def handle(self, *args, **options):
        actor = actor_from_options(options)
        with command_errors():
            if options["user"]:
                self._user_override(options, actor)
            elif options["set"]:
                changes = {}
                for item in options["set"]:
                    name, sep, value = item.partition("=")
                    if not sep:
                        raise CommandError(f"--set takes NAME=VALUE, got {item!r}.")
                    changes[name.strip()] = _limit_value(name.strip(), value)
                risk_limits_set(changes=changes, reason=options["reason"], acting_user=actor, source="cli")
                self.stdout.write(self.style.SUCCESS("Risk limits changed; effective on the next bet."))
        self._print()

    def _user_override(self, options, actor) -> None:
        user = user_get_by_email(email=options["user"])
        if not options["until"]:
            raise CommandError("A per-user override needs --until YYYY-MM-DD.")
        ends_at = datetime.combine(date_parse(options["until"]), time.min, tzinfo=market_timezone())

        def amount(field: str) -> int | None:
            return None if options[field] is None else parse_amount_u(options[field], allow_zero=True)

        user_limit_set(
            user=user,
            ends_at=ends_at,
            reason=options["reason"],
            max_stake_u=amount("max_stake_u"),
            max_user_round_u=amount("max_user_round_u"),
            max_user_day_u=amount("max_user_day_u"),
            acting_user=actor,
            source="cli",
        )
        self.stdout.write(self.style.SUCCESS(f"Override for {user.email} until {ends_at.isoformat()} (ET) recorded."))

    def _print(self) -> None:
        limits = house_limits_get()
        row = risk_limits_row()
        origin = "the BET_* settings (never changed)" if row is None else f"changed {row.updated_at:%Y-%m-%d %H:%M} UTC"
        self.stdout.write(f"House limits ({origin}):")
        for name in LIMIT_FIELDS:
            value = getattr(limits, name)
            shown = ("no cap" if value is None else f"{value} x") if name == "max_side_ratio" else _show(value)
            self.stdout.write(f"  {name:<20} {shown}")
        overrides = list(user_limits_in_force())
        self.stdout.write(f"Per-user overrides in force: {len(overrides)}")
        for o in overrides:
            self.stdout.write(
                f"  {o.user.email:<40} stake {_show(o.max_stake_u)}, round {_show(o.max_user_round_u)}, "
                f"day {_show(o.max_user_day_u)} until {o.ends_at.astimezone(market_timezone()):%Y-%m-%d %H:%M} ET"
            )
