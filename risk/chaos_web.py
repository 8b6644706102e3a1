"""`python -m risk.chaos_web -c config/gunicorn.py config.wsgi`: gunicorn on the chaos days' travelled clock.

CHAOS_CLOCK (ISO 8601) sets the master's clock to the simulated moment, ticking on from there; the workers
it forks (and respawns) inherit it, so a bet over HTTP meets the simulated day's round open, as a real
worker would meet today's.
"""

import os
import sys
from datetime import datetime

import time_machine


def main() -> None:
    at = os.environ.get("CHAOS_CLOCK", "")
    if at:
        time_machine.travel(datetime.fromisoformat(at), tick=True).start()
    from gunicorn.app.wsgiapp import run

    sys.argv = ["gunicorn", *sys.argv[1:]]
    run()


if __name__ == "__main__":
    main()
