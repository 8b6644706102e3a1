"""`python -m risk.chaos_worker -A config worker ...`: a Celery worker on the chaos days' travelled clock.

CHAOS_CLOCK (ISO 8601) sets this process's clock to the simulated moment, ticking on from there, so the
rows the worker writes carry the simulated day's times, as a real worker's would carry the real ones.
"""

import os
import sys
from datetime import datetime

import time_machine


def main() -> None:
    at = os.environ.get("CHAOS_CLOCK", "")
    if at:
        time_machine.travel(datetime.fromisoformat(at), tick=True).start()
    from celery.__main__ import main as celery_main

    sys.argv = ["celery", *sys.argv[1:]]
    celery_main()


if __name__ == "__main__":
    main()
