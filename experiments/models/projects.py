"""Projects and who holds which role in each: the unit of "who may see and do what" (``experiments.access``).

A project owns experiments, and through them runs (and the runs' sweeps, share links, alerts, trash
entries and audit entries). A fresh install has one project, ``default``, and in it a logged-in user
without an explicit role gets the role their global permissions give, so one team never notices
projects. Any other project is seen only by its members: a user named in a ``ProjectRole``, or in a
Django group named in one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.apps import apps as installed_apps
from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from experiments.pipeline.config import RESERVED_FOLDER

DEFAULT_PROJECT = "default"
# ``<trainings root>/projects/<project>/`` holds a project's experiments (default's stay at the root), so no
# experiment may be called this.
PROJECTS_FOLDER = RESERVED_FOLDER

# Lower case letters, digits, "-" and "_", starting with a letter or digit: a project's name is a folder's
# name under ``<trainings root>/projects/`` and a query-string value, so it needs no quoting anywhere.
PROJECT_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
project_name_validator = RegexValidator(
    PROJECT_NAME_PATTERN,
    "A project's name is 1 to 63 lower-case letters, digits, '-' or '_', starting with a letter or a digit "
    "(it names a folder), e.g. vision-team.",
)


class Role(models.TextChoices):
    """What a member may do, each role including the ones before it."""

    VIEWER = "viewer", "viewer: reads everything of the project"
    EDITOR = "editor", "editor: also launches, cancels, sweeps, edits notes and tags, archives, shares"
    MAINTAINER = "maintainer", "maintainer: also deletes and restores, prunes, manages members and alert rules"


RANK = {Role.VIEWER: 1, Role.EDITOR: 2, Role.MAINTAINER: 3}


def at_least(role: str | None, needed: str) -> bool:
    """Whether ``role`` (None: no role) includes what ``needed`` may do."""
    return role is not None and RANK[Role(role)] >= RANK[Role(needed)]


def best(roles: list[str]) -> str | None:
    """The highest of ``roles`` (a user's own and their groups'), None if there are none."""
    return max(roles, key=lambda role: RANK[Role(role)], default=None)


class Project(models.Model):
    """A team's space: its experiments and runs, and the roles that say who may see and change them."""

    name = models.CharField(
        max_length=63,
        unique=True,
        validators=[project_name_validator],
        help_text="Its name, also its folder's under <trainings root>/projects/ (default's runs stay at the root).",
    )
    created_at = models.DateTimeField(auto_now_add=True, help_text="When it was created.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_PROJECT

    @classmethod
    def default(cls) -> Project:
        """The ``default`` project (made by migration 0016; made again here if someone removed it)."""
        project, _ = cls.objects.get_or_create(name=DEFAULT_PROJECT)
        return project


def project_root(trainings_root: Path, project: str) -> Path:
    """Where ``project``'s experiments live: the trainings root for default, ``<root>/projects/<project>`` else."""
    return trainings_root if project == DEFAULT_PROJECT else trainings_root / PROJECTS_FOLDER / project


def default_after_migrate(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """After every ``migrate``, and after a ``flush`` (which sends the same ``post_migrate``): the ``default`` project
    is there. Migration 0016 makes it, but a flush empties every table, and the pages read it by name rather than
    making it again on each request (``experiments.access.visible_projects``)."""
    try:
        project = kwargs.get("apps", installed_apps).get_model("experiments", "Project")  # a flush names no apps
    except LookupError:  # migrated back to before projects
        return
    project.objects.using(using).get_or_create(name=DEFAULT_PROJECT)


def default_project_id() -> int:
    """An experiment's project when none is named: ``default`` (the field's default)."""
    return Project.default().pk


class ProjectRole(models.Model):
    """One user's or one group's role in one project."""

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="roles", help_text="The project the role is in."
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="project_roles",
        help_text="The user who holds it (or leave empty and name a group).",
    )
    group = models.ForeignKey(
        "auth.Group",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="project_roles",
        help_text="The group whose every member holds it (or leave empty and name a user).",
    )
    role = models.CharField(max_length=16, choices=Role.choices, help_text="What the holder may do in the project.")

    class Meta:
        ordering = ["project", "role", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(user__isnull=False, group__isnull=True)
                | models.Q(user__isnull=True, group__isnull=False),
                name="project_role_user_xor_group",
                violation_error_message="A role is held by a user or by a group: name exactly one of them.",
            ),
            # One role per holder and project: granting again changes it (access reads the user's roles
            # by user and by group, through these constraints' indexes).
            models.UniqueConstraint(
                fields=["project", "user"], condition=models.Q(user__isnull=False), name="project_role_one_per_user"
            ),
            models.UniqueConstraint(
                fields=["project", "group"], condition=models.Q(group__isnull=False), name="project_role_one_per_group"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.holder} is {self.role} of {self.project.name}"

    @property
    def holder(self) -> str:
        """``alice`` or ``group:vision`` (as ``manage.py project grant`` takes it)."""
        if self.group_id is not None and self.group is not None:
            return f"group:{self.group.name}"
        return self.user.get_username() if self.user is not None else "?"
