#!/usr/bin/env python
"""Django's command-line utility for Gymnos (train, sync_trainings, up, runserver...)."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gymnos_web.settings")
    from gymnos_web import localstate

    localstate.prepare()  # var/ and its secret key, before the settings read them
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
