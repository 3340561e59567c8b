"""``curation.json``: what people added to a run, kept in its folder beside the seed's files.

The folder is the record of truth, so a run's title, notes, tags and archived state are written
here (atomically, through ``experiments.pipeline.fileops``, which follows no link) before the
database row, and sync reads them back (``read_into``), so dropping the database and syncing
again gives every edit back::

    {"title": "wider layers", "notes": "Lower *val_loss* than the baseline.", "tags": ["baseline"],
     "archived": false, "updated_at": "2026-11-29T10:31:02+00:00", "updated_by": "olivia"}

A key is present only once someone set it: without ``title`` the config's ``experiment.name`` is
the title, and without ``tags`` the config's ``experiment.tags`` are the tags. Once someone edited
the tags, the sidecar's list wins (it started as the config's, so nothing is lost).

The limits below bound what a person may write (the forms and the API check them) and what sync
reads from a folder (a sidecar past them is reported on the run, not indexed).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from experiments import files
from experiments.pipeline import fileops, jsonlimits

FILE = "curation.json"
MAX_BYTES = 256 * 1024
MAX_TITLE = 255
MAX_NOTES = 50_000
MAX_TAGS = 50
MAX_TAG = 64


class SidecarError(ValueError):
    """A value a person gave, or a sidecar a folder holds, past the limits; the message says which."""


def tag_problem(tag: str) -> str | None:
    """Why ``tag`` cannot be a tag, or None."""
    if not tag:
        return "a tag cannot be empty"
    if len(tag) > MAX_TAG:
        return f"the tag {tag[:20]!r}... is {len(tag)} characters; at most {MAX_TAG}"
    if "," in tag:
        return f"the tag {tag!r} has a comma; commas separate tags"
    if any(not character.isprintable() for character in tag):
        return f"the tag {tag!r} has a control character"
    return None


def clean_tags(tags: list[str]) -> list[str]:
    """Tags stripped, duplicates dropped (first kept), each checked; raises ``SidecarError``."""
    cleaned: list[str] = []
    for tag in tags:
        tag = tag.strip()
        problem = tag_problem(tag)
        if problem:
            raise SidecarError(problem)
        if tag not in cleaned:
            cleaned.append(tag)
    if len(cleaned) > MAX_TAGS:
        raise SidecarError(f"{len(cleaned)} tags; a run may have at most {MAX_TAGS}")
    return cleaned


def parse_tags(text: str) -> list[str]:
    """``"baseline, wide"`` -> ``["baseline", "wide"]`` (empty parts dropped), checked."""
    return clean_tags([part for part in text.split(",") if part.strip()])


def clean_title(title: str) -> str:
    title = title.strip()
    if len(title) > MAX_TITLE:
        raise SidecarError(f"the title is {len(title)} characters; at most {MAX_TITLE}")
    if any(not character.isprintable() for character in title):
        raise SidecarError("the title has a control character (a line break, a tab...)")
    return title


def clean_notes(notes: str) -> str:
    notes = notes.replace("\r\n", "\n").rstrip()
    if len(notes) > MAX_NOTES:
        raise SidecarError(f"the notes are {len(notes):,} characters; at most {MAX_NOTES:,}")
    if "\x00" in notes:
        raise SidecarError("the notes hold a NUL character")
    return notes


@dataclass
class Sidecar:
    """What a ``curation.json`` says; None for a key it does not have."""

    title: str | None = None
    notes: str = ""
    tags: list[str] | None = None
    archived: bool = False
    # Archived because its whole experiment was: unarchiving the experiment brings it back.
    archived_with_experiment: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # keys a later version wrote: kept as they are

    def as_json(self, by: str) -> dict[str, Any]:
        document: dict[str, Any] = dict(self.extra)
        if self.title is not None:
            document["title"] = self.title
        if self.notes:
            document["notes"] = self.notes
        if self.tags is not None:
            document["tags"] = self.tags
        document["archived"] = self.archived
        if self.archived_with_experiment:
            document["archived_with_experiment"] = True
        document["updated_at"] = timezone.now().isoformat(timespec="seconds")
        document["updated_by"] = by
        return document


KNOWN = {"title", "notes", "tags", "archived", "archived_with_experiment", "updated_at", "updated_by"}


def parse(data: bytes) -> Sidecar:
    """A sidecar's bytes as a ``Sidecar``; raises ``SidecarError`` saying what is wrong."""
    try:
        document = jsonlimits.loads(data, max_bytes=MAX_BYTES, what=FILE)
    except jsonlimits.JSONLimitError as exc:
        raise SidecarError(str(exc).removeprefix(f"{FILE} ")) from None
    if not isinstance(document, dict):
        raise SidecarError(f"expected a JSON object, got {type(document).__name__}")
    sidecar = Sidecar(extra={key: value for key, value in document.items() if key not in KNOWN})
    title, notes, tags = document.get("title"), document.get("notes", ""), document.get("tags")
    if title is not None:
        if not isinstance(title, str):
            raise SidecarError(f"title: expected a string, got {type(title).__name__}")
        sidecar.title = clean_title(title)
    if not isinstance(notes, str):
        raise SidecarError(f"notes: expected a string, got {type(notes).__name__}")
    sidecar.notes = clean_notes(notes)
    if tags is not None:
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise SidecarError("tags: expected a list of strings")
        sidecar.tags = clean_tags(tags)
    for flag in ("archived", "archived_with_experiment"):
        value = document.get(flag, False)
        if not isinstance(value, bool):
            raise SidecarError(f"{flag}: expected true or false, got {json.dumps(value)[:40]}")
        setattr(sidecar, flag, value)
    return sidecar


def read(folder: str | os.PathLike[str]) -> Sidecar:
    """The sidecar of ``folder`` (a run folder inside the root), or an empty one when it has none.

    Read through the one bounded reader: at most ``MAX_BYTES``, never through a link out of the folder.
    """
    try:
        data = files.read_file(folder, FILE, MAX_BYTES)
    except FileNotFoundError:
        return Sidecar()
    except files.Refused as exc:
        raise SidecarError(str(exc)) from None
    return parse(data)


def write(folder: str | os.PathLike[str], sidecar: Sidecar, by: str) -> None:
    """Write the sidecar of ``folder`` atomically: readers see the old file or the new one, never half of one.

    ``folder`` is the run's folder as indexed (``Execution.folder_path``), under the trainings root:
    a folder on the way that is a symbolic link is refused (``fileops.Refused``, saying which), so an
    edit never lands in the run a link points to; a ``curation.json`` that is a link is replaced.
    """
    data = json.dumps(sidecar.as_json(by), indent=2, ensure_ascii=False).encode() + b"\n"
    fileops.write(settings.GYMNOS_TRAININGS_ROOT, Path(folder) / FILE, data)
