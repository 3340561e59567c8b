"""This machine's state under ``var/`` (``GYMNOS_VAR_DIR``): the default SQLite database's folder, the
logs, the static root and the generated secret key.

Importing the settings makes none of it, so anything that only reads them (a test run, mypy's Django
plugin, a linter) writes nothing. The entry points that run Gymnos call ``prepare()`` before the
settings are read: ``manage.py`` (every command: ``up``, ``runserver``, ``rqworker``, ``migrate``...),
``wsgi.py`` and ``asgi.py`` (a server started on its own). So every process of one machine signs
sessions with the key the first of them saved.

Nothing here imports Django: it runs before the settings exist.
"""

from __future__ import annotations

import io
import os
import secrets
import tempfile
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY_FILE = "secret_key"


def var_dir() -> Path:
    """``GYMNOS_VAR_DIR``, else ``var/`` beside manage.py."""
    return Path(os.environ.get("GYMNOS_VAR_DIR") or BASE_DIR / "var").expanduser().resolve()


def saved_secret_key(var: Path) -> str | None:
    """The key ``prepare()`` saved under ``var``, or None when there is none yet."""
    try:
        return (var / SECRET_KEY_FILE).read_text().strip() or None
    except FileNotFoundError:
        return None


def prepare() -> None:
    """Make ``var/`` with its ``log/`` and ``static/`` folders, and save a secret key there unless
    ``SECRET_KEY`` is set. Does nothing that is already done."""
    var = var_dir()
    for folder in (var, var / "log", var / "static"):
        folder.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("SECRET_KEY"):
        _save_secret_key(var / SECRET_KEY_FILE)


def _save_secret_key(path: Path) -> None:
    """Write a new key to ``path`` unless one is there. Written whole under another name, then linked
    into place (which fails if the name is taken): processes starting together, such as a web server's
    workers, all end up reading one key, never a half-written file."""
    if path.exists():
        return
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret_key.")  # mode 0600
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
        os.link(temporary, path)
    except FileExistsError:
        pass  # another process saved one first: that one is the key
    finally:
        os.unlink(temporary)


class LogFile(RotatingFileHandler):
    """A rotating log file that is opened, and its folder made, when the first line is written:
    configuring logging (every ``django.setup()``) writes nothing."""

    def __init__(self, filename: str, **kwargs: Any) -> None:
        super().__init__(filename, delay=True, **kwargs)

    def _open(self) -> io.TextIOWrapper:
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()
