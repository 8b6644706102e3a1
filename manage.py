#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    # A command prints its result on stdout; the services' INFO lines would only repeat it on stderr.
    # Warnings and errors still show; LOG_LEVEL=INFO brings the rest back. The web server keeps INFO.
    if sys.argv[1:2] != ["runserver"]:
        os.environ.setdefault("LOG_LEVEL", "WARNING")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
