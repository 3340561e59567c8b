"""Which sweeps a user may see: a sweep belongs to the project it was launched into (``?project=``,
``--project``; where its trials' runs go). One launched before sweeps named a project belongs to the project
of the run it started from, and one started from a config alone to ``default``.
The rules are ``experiments.access``'."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from experiments.access import READ, require_role, visible_projects
from experiments.models import DEFAULT_PROJECT, Project

from .models import Sweep


def visible_sweeps(user: Any) -> QuerySet[Sweep]:
    projects = visible_projects(user)
    of_default = projects.filter(name=DEFAULT_PROJECT).exists()
    in_projects = Q(base_execution__experiment__project__in=projects)
    legacy = in_projects | Q(base_execution__isnull=True) if of_default else in_projects
    return Sweep.objects.filter(Q(project__in=projects) | Q(project__isnull=True) & legacy)


def project_of_sweep(sweep: Sweep) -> Project:
    """The project it was launched into; one launched before sweeps named one: its base run's (else default)."""
    if sweep.project is not None:
        return sweep.project
    base = sweep.base_execution
    return base.experiment.project if base is not None else Project.default()


def get_sweep_for_user(user: Any, sweep_id: int, action: str = READ) -> Sweep:
    """The sweep if the user may see it (404 otherwise) and may ``action`` in its project (403 otherwise)."""
    sweep = get_object_or_404(
        visible_sweeps(user).select_related("project", "base_execution__experiment__project", "created_by"), pk=sweep_id
    )
    require_role(user, project_of_sweep(sweep), action)
    return sweep
