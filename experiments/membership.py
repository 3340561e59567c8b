"""Making projects and giving roles in them: what ``manage.py project``, the admin and the API share.

Each change is audited (``project_create``, ``role_grant``, ``role_revoke``). A holder is written as
``manage.py project`` takes it: a user's name (``alice``) or a group's (``group:vision``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction

from audit.models import Entry
from audit.recording import record
from experiments.models import Project, ProjectRole, Role

if TYPE_CHECKING:
    from django.http import HttpRequest

GROUP_PREFIX = "group:"


class MembershipError(ValueError):
    """A project, user, group or role that is not there or not valid; the message says which and how to fix it."""


@dataclass(frozen=True)
class Holder:
    """A user or a group, as a role names it."""

    user: Any = None
    group: Group | None = None

    def lookup(self) -> dict[str, Any]:
        return {"user": self.user} if self.user is not None else {"group": self.group}

    def __str__(self) -> str:
        return f"{GROUP_PREFIX}{self.group.name}" if self.group is not None else str(self.user.get_username())


def find_project(name: str) -> Project:
    project = Project.objects.filter(name=name).first()
    if project is None:
        known = ", ".join(Project.objects.values_list("name", flat=True)) or "none"
        raise MembershipError(f"no project named {name!r} (there are: {known}); make it with: manage.py project create")
    return project


def find_holder(text: str) -> Holder:
    """``alice`` is the user alice, ``group:vision`` the Django group vision."""
    if text.startswith(GROUP_PREFIX):
        name = text.removeprefix(GROUP_PREFIX)
        group = Group.objects.filter(name=name).first()
        if group is None:
            raise MembershipError(f"no group named {name!r}; make it in the admin (Authentication > Groups) first")
        return Holder(group=group)
    User = get_user_model()
    user = User.objects.filter(**{User.USERNAME_FIELD: text}).first()
    if user is None:
        raise MembershipError(f"no user named {text!r} (write a group as group:NAME); create the user first")
    return Holder(user=user)


def create_project(name: str, request: HttpRequest | None = None, actor: Any = None) -> Project:
    """A new project (none of its roles yet: grant them); the name's rules are ``Project.name``'s."""
    project = Project(name=name)
    try:
        project.full_clean()
    except ValidationError as exc:
        problems = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items())
        raise MembershipError(f"cannot create project {name!r}: {problems}") from None
    project.save()
    record(request, Entry.Action.PROJECT_CREATE, target=f"project {name}", actor=actor, project=name)
    return project


def grant(project: Project, holder: Holder, role: str, request: HttpRequest | None = None, actor: Any = None) -> str:
    """Give ``holder`` ``role`` in ``project`` (replacing the one it had there); the role it had before, or ''."""
    if role not in Role.values:
        raise MembershipError(f"no role {role!r}; a role is one of: {', '.join(Role.values)}")
    with transaction.atomic():
        existing = ProjectRole.objects.select_for_update().filter(project=project, **holder.lookup()).first()
        before = existing.role if existing is not None else ""
        if existing is None:
            ProjectRole.objects.create(project=project, role=role, **holder.lookup())
        elif existing.role != role:
            existing.role = role
            existing.save(update_fields=["role"])
    record(
        request,
        Entry.Action.ROLE_GRANT,
        target=f"{holder} in project {project.name}",
        actor=actor,
        project=project.name,
        holder=str(holder),
        role=role,
        before=before,
    )
    return before


def revoke(project: Project, holder: Holder, request: HttpRequest | None = None, actor: Any = None) -> str:
    """Take ``holder``'s role in ``project`` away; the role it had."""
    existing = ProjectRole.objects.filter(project=project, **holder.lookup()).first()
    if existing is None:
        raise MembershipError(f"{holder} has no role in project {project.name!r}; nothing to revoke")
    existing.delete()
    record(
        request,
        Entry.Action.ROLE_REVOKE,
        target=f"{holder} in project {project.name}",
        actor=actor,
        project=project.name,
        holder=str(holder),
        role=existing.role,
    )
    return existing.role


def listing() -> list[tuple[str, list[str]]]:
    """Every project with its members, ``["alice: maintainer", "group:vision: viewer"]``."""
    roles: dict[int, list[str]] = {}
    for role in ProjectRole.objects.select_related("user", "group"):
        roles.setdefault(role.project_id, []).append(f"{role.holder}: {role.role}")
    return [(project.name, roles.get(project.pk, [])) for project in Project.objects.all()]
