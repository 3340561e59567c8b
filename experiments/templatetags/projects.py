"""``{% load projects %}``: what the navigation bar asks about the user's projects."""

from typing import Any

from django import template

from experiments.access import explicit_roles

register = template.Library()


@register.filter
def has_project(user: Any) -> bool:
    """Whether the user holds a role in a project (their own or a group's), or is a superuser (every project's
    maintainer): the Projects link is theirs. Read once per request (``access`` keeps the roles on the user)."""
    if not getattr(user, "is_authenticated", False):
        return False
    return bool(user.is_superuser or explicit_roles(user))
