"""What a web process does once at boot so that its first visitors do not wait for it.

Left to the first request, a fresh process imports every view module (the URLconf, about half a second) and
compiles each template it renders; under ASGI the requests that arrive meanwhile queue behind the import lock, so
right after ``manage.py up`` (or a worker restart) the first pages took seconds on a loaded machine.
:func:`warm_pages` does that work before the process says it is ready.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.template.loader import get_template
from django.urls import get_resolver


def warm_pages() -> int:
    """Import the URLconf (every view), build its reverse lookups, and compile the project's own templates
    (the cached loader keeps them); returns how many templates were compiled."""
    resolver = get_resolver()
    resolver.url_patterns  # noqa: B018 - the import is the point
    resolver.reverse_dict  # noqa: B018 - built on the first {% url %} otherwise
    compiled = 0
    engines: list[dict[str, Any]] = settings.TEMPLATES
    for root in (Path(folder) for engine in engines for folder in engine.get("DIRS", [])):
        for path in sorted(root.rglob("*.html")):
            try:
                get_template(path.relative_to(root).as_posix())
            except (TemplateDoesNotExist, TemplateSyntaxError):
                continue  # not ours to judge here: the page that uses it says so
            compiled += 1
    return compiled
