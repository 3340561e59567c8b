"""Curation on the pages: notes as safe HTML, a run's own history from the audit log."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString

from audit.history import history_of
from experiments.curation.markdown import render

register = template.Library()


@register.filter
def markdown(text: str) -> SafeString:
    """Notes (Markdown) as sanitised HTML: ``{{ execution.notes|markdown }}``."""
    return render(text)


@register.simple_tag
def run_history(execution: Any, limit: int = 50) -> list[Any]:
    """``{% run_history execution as entries %}``: its audit entries, newest first."""
    return history_of(execution, limit) if getattr(execution, "pk", None) else []
