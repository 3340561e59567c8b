"""The dashboard's static files: compressed, named by their content, collected when they changed.

Pages load scripts of a few megabytes (Plotly's bundles, static/vendor/plotly/), so they are served
the way whitenoise serves best: ``collectstatic`` writes each file under a name holding its hash
(``plotly-cartesian.min.9f3c….js``) with a gzipped copy beside it, and whitenoise sends the gzip to
every browser that takes it, with a far-future ``Cache-Control: immutable``. A new version is a new
name, so a browser never runs a stale script and never asks twice for the same one.

``collect()`` runs ``collectstatic`` only when the files changed since the last run (their names,
sizes and times, hashed: a stamp in ``STATIC_ROOT``), so ``manage.py up`` and the tests start at
once when nothing changed.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.management import call_command
from whitenoise.compress import Compressor
from whitenoise.storage import CompressedManifestStaticFilesStorage

STAMP = ".gymnos-collected"


class CompressedStorage(CompressedManifestStaticFilesStorage):
    """Whitenoise's compressed manifest storage, gzip only.

    Brotli at its top quality takes about a minute for Plotly's bundles on a small machine, every time the
    files change, for a tenth less than gzip over a link that is a local network or the same machine.
    """

    def create_compressor(self, **kwargs: Any) -> Compressor:
        return Compressor(use_brotli=False, **kwargs)


def sources_fingerprint() -> str:
    """A digest of every file the finders would collect (path, size, mtime) and of the storage that writes
    them: what decides whether a collected ``STATIC_ROOT`` is current."""
    digest = hashlib.blake2b(str(settings.STORAGES["staticfiles"]).encode(), digest_size=16)
    found = []
    for finder in finders.get_finders():
        for path, storage in finder.list([]):
            stat = os.stat(storage.path(path))
            found.append(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n")
    for line in sorted(found):
        digest.update(line.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def is_current(root: Path | None = None) -> bool:
    """Whether ``root`` (default ``STATIC_ROOT``) holds what the last ``collect()`` of today's files wrote."""
    stamp = Path(root or settings.STATIC_ROOT) / STAMP
    try:
        return stamp.read_text() == sources_fingerprint()
    except OSError:
        return False


def collect(verbosity: int = 0) -> bool:
    """``collectstatic`` into ``STATIC_ROOT`` when the static files changed since it last ran; True if it ran.

    Old hashed copies are cleared with it (``--clear``), so the folder holds one version of each file.
    """
    if is_current():
        return False
    fingerprint = sources_fingerprint()
    call_command("collectstatic", interactive=False, clear=True, verbosity=verbosity)
    (Path(settings.STATIC_ROOT) / STAMP).write_text(fingerprint)
    return True
