"""Fields that several models declare the same way, so each rule is said once.

launched_by = person("launched_executions", "Who queued it (empty for CLI runs and synced folders).")
summary = json_object("Per-epoch metric -> {...}.")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def person(related_name: str, help_text: str) -> models.ForeignKey[User | None, User | None]:
    """Who did something. Removing their account keeps what they did (the field becomes empty)."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name=related_name,
        help_text=help_text,
    )


def json_object(help_text: str) -> models.JSONField[Any, Any]:
    """A JSON object that is ``{}`` until something fills it (sync, the worker, a sweep)."""
    return models.JSONField(default=dict, blank=True, help_text=help_text)
