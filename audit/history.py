"""Reading the audit log back: one execution's own history, for its page.

for entry in history_of(execution):   # newest first
    entry.summary                     # "tags: baseline -> baseline, wide"
"""

from __future__ import annotations

from typing import Any

from audit.models import Entry


def summary(entry: Entry) -> str:
    """What an entry's details say, in a few words."""
    details = entry.details if isinstance(entry.details, dict) else {}
    parts: list[str] = []
    changed = details.get("changed")
    if isinstance(changed, dict):
        if "title" in changed:
            parts.append(f"title: {changed['title'] or '(the config’s)'}")
        tags = changed.get("tags")
        if isinstance(tags, dict):
            before = ", ".join(map(str, tags.get("from") or [])) or "none"
            after = ", ".join(map(str, tags.get("to") or [])) or "none"
            parts.append(f"tags: {before} → {after}")
        if "notes" in changed:
            parts.append("notes edited")
    if details.get("with_experiment"):
        parts.append("with its experiment")
    files = details.get("files")
    if isinstance(files, list):
        parts.append(f"{len(files)} checkpoint{'s' if len(files) != 1 else ''} removed")
    if isinstance(details.get("bytes"), int):
        parts.append(f"{details['bytes']:,} bytes")
    if details.get("via"):
        parts.append(f"via {details['via']}")
    return "; ".join(parts)


def history_of(execution: Any, limit: int = 50) -> list[Entry]:
    """The entries about ``execution``, newest first, each with ``.summary`` set."""
    entries = list(Entry.objects.filter(execution=execution).select_related("actor")[:limit])
    for entry in entries:
        entry.summary = summary(entry)  # type: ignore[attr-defined]
    return entries
