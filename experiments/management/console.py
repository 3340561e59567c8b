"""What ``manage.py up`` shows while it runs, after the lines that say where to log in.

Requests are not shown unless asked for (``--access-log``, or ``-v 2``): a page polls every couple of
seconds, and a request line for each would scroll the password away. Errors are always shown: each
error record the web server's log gets (a request that failed with its traceback, a gunicorn worker
that died) is echoed to the console as it is written. When the first person logs in, the way back in
is said again, without the password.

    echo = ErrorEcho(Path("var/log/web.log"), offset, sys.stderr.write)
    echo.poll()          # in the supervising loop: writes what was added since, errors only
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import DatabaseError

# The first line of a log record: Django's "2026-12-06 04:39:01,123 ERROR django.request: ..." (settings'
# "plain" format) or gunicorn's "[2026-12-06 04:39:01 +0000] [4242] [ERROR] ...". Other lines (a traceback)
# belong to the record above them.
RECORD = re.compile(rb"^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ([A-Z]+) |\[[^\]\n]{1,64}\] \[\d+\] \[([A-Z]+)\] )")
SHOWN = {b"ERROR", b"CRITICAL"}
MAX_READ = 1 << 20  # bytes read at one poll: a flood of log lines cannot stall the supervisor


class ErrorEcho:
    """Follows a log file from ``offset`` and writes its error records, tracebacks included, with ``write``."""

    def __init__(self, path: Path, offset: int, write: Callable[[str], object]) -> None:
        self.path = path
        self.offset = offset
        self.write = write
        self.partial = b""
        self.showing = False

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as log:
                log.seek(self.offset)
                data = log.read(MAX_READ)
        except OSError:
            return
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        for line in lines:
            record = RECORD.match(line)
            if record is not None:
                self.showing = (record.group(1) or record.group(2)) in SHOWN
            if self.showing:
                self.write(line.decode("utf-8", "replace") + "\n")


class FirstLogin:
    """Says once, when the first person has logged in, how to come back: the URL, the user, how to reset it."""

    CHECK_EVERY = 3.0  # seconds between two looks at the users' last logins

    def __init__(self, url: str, write: Callable[[str], object]) -> None:
        self.url = url
        self.write = write
        self.checked = 0.0
        try:
            self.waiting = not get_user_model().objects.filter(last_login__isnull=False).exists()
        except DatabaseError:
            self.waiting = False

    def poll(self) -> None:
        if not self.waiting or time.monotonic() - self.checked < self.CHECK_EVERY:
            return
        self.checked = time.monotonic()
        try:
            user = get_user_model().objects.filter(last_login__isnull=False).order_by("last_login").first()
        except DatabaseError:
            return
        if user is not None:
            self.waiting = False
            name = user.get_username()
            self.write(
                f"{name} logged in. To log in again: {self.url} as {name}; "
                f"a forgotten password: python manage.py changepassword {name}"
            )
