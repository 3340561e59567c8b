"""The admin's lists for staff who are not superusers: only objects of the projects they may see.

Staff are not members of a project for being staff (``experiments.access``): in the admin, as on the pages,
a staff user sees the runs (and their metrics, alert rules and deliveries, audit entries) of the projects
they hold a role in, and ``default``'s. A superuser sees everything (the one exception). An object of
another project is missing from the list and its change page answers as for an object that does not exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from django.contrib import admin
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest

from experiments.access import visible_projects

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Any]
else:
    _ModelAdmin = admin.ModelAdmin

M = TypeVar("M", bound=Model)


def sees_everything(request: HttpRequest) -> bool:
    return bool(getattr(request.user, "is_superuser", False))


def in_visible_projects(request: HttpRequest, queryset: QuerySet[M], project_path: str) -> QuerySet[M]:
    """``queryset`` narrowed to objects whose ``project_path`` (``experiment__project``, say) the user sees."""
    if sees_everything(request):
        return queryset
    return queryset.filter(**{f"{project_path}__in": visible_projects(request.user)})


def visible_q(request: HttpRequest, project_path: str) -> Q:
    """The condition of ``in_visible_projects``, to combine with others (an object with several owners)."""
    return Q(**{f"{project_path}__in": visible_projects(request.user)})


class ProjectScopedAdmin(_ModelAdmin):
    """A model admin whose list (and change pages) a non-superuser sees only for their projects' objects."""

    project_path = "experiment__project"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return in_visible_projects(request, super().get_queryset(request), self.project_path)
