"""Who may see and do what. The views and the API call these rather than check permissions themselves.

Everything belongs to a project (``experiments.models.projects``), and a user's role in a project
decides: a **viewer** reads everything of it, an **editor** also launches, cancels, sweeps, edits
notes and tags, archives and shares, a **maintainer** also deletes and restores, prunes checkpoints,
and manages the project's members and alert rules. Roles are given to users and to groups.

Compatibility, so one team never notices projects: in the ``default`` project a logged-in user without
an explicit role has what their global permissions give, as before projects: reading for everyone
logged in, launching and cancelling with ``experiments.add_execution``, editing and archiving with
``experiments.change_execution``, deleting, restoring and emptying the trash with
``experiments.delete_execution``. Other projects need an explicit role. Staff are not members of a
project for being staff; a superuser is a maintainer of every project (the one exception).

An object of a project the user may not see is a 404 (a 403 would say that it exists); one they may see
but not act on is a 403 naming the role it needs. An API token acts as its user, narrowed to one
project and/or to reading if it was made so. A share link grants exactly one execution or one
comparison, read-only, to anyone holding its token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404

from audit.models import Entry
from audit.recording import record
from experiments.models import DEFAULT_PROJECT, Execution, Experiment, Project, ProjectRole, Role, ShareLink
from experiments.models.projects import at_least, best

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User
    from django.db.models import QuerySet

    from experiments.models import ExecutionQuerySet
    from experiments.models.tokens import TokenLimits

LAUNCH_PERMISSION = "experiments.add_execution"
# Curation: editing a run's title, notes and tags, and archiving it; moving it to the trash and back.
EDIT_PERMISSION = "experiments.change_execution"
DELETE_PERMISSION = "experiments.delete_execution"

# What each action needs: a role in the project, or (default project, no explicit role) a global permission.
READ, LAUNCH, EDIT, SHARE, DELETE, MANAGE = "read", "launch", "edit", "share", "delete", "manage"
ACTIONS: dict[str, tuple[str, str | None, str]] = {
    READ: (Role.VIEWER, None, "see it"),
    LAUNCH: (Role.EDITOR, LAUNCH_PERMISSION, "launch or cancel runs"),
    EDIT: (Role.EDITOR, EDIT_PERMISSION, "edit or archive runs"),
    SHARE: (Role.EDITOR, "", "share runs"),  # "": in default, as before projects, anyone logged in
    DELETE: (Role.MAINTAINER, DELETE_PERMISSION, "delete or restore runs"),
    MANAGE: (Role.MAINTAINER, None, "manage the project's members"),
}


def _limits(user: Any) -> TokenLimits | None:
    return getattr(user, "token_limits", None)


def explicit_roles(user: User | AnonymousUser) -> dict[int, str]:
    """``{project id: role}`` the user holds themselves or through a group (the highest), once per request."""
    if not user.is_authenticated:
        return {}
    cached: dict[int, str] | None = getattr(user, "_gymnos_roles", None)
    if cached is None:
        held: dict[int, list[str]] = {}
        rows = ProjectRole.objects.filter(Q(user=user) | Q(group__in=user.groups.all())).values_list(
            "project_id", "role"
        )
        for project_id, role in rows:
            held.setdefault(project_id, []).append(role)
        cached = {project_id: best(roles) or Role.VIEWER for project_id, roles in held.items()}
        user.__dict__["_gymnos_roles"] = cached  # once per request: the user object lives as long as it
    return cached


def role_for(user: User | AnonymousUser, project: Project) -> str | None:
    """The user's role in ``project`` (None: they may not see it), a token's project limit applied."""
    if not user.is_authenticated:
        return None
    limits = _limits(user)
    if limits is not None and limits.project_id is not None and limits.project_id != project.pk:
        return None
    if user.is_superuser:
        return Role.MAINTAINER
    role = explicit_roles(user).get(project.pk)
    if role is None and project.name == DEFAULT_PROJECT:
        return _global_role(user)
    return role


def _global_role(user: User | AnonymousUser) -> str:
    """The role the global permissions amount to in ``default`` (shown in /api/projects)."""
    if user.has_perm(DELETE_PERMISSION):
        return Role.MAINTAINER
    if user.has_perm(EDIT_PERMISSION) or user.has_perm(LAUNCH_PERMISSION):
        return Role.EDITOR
    return Role.VIEWER


def may(user: User | AnonymousUser, project: Project, action: str) -> bool:
    """Whether ``user`` may do ``action`` (READ, LAUNCH, EDIT, DELETE, MANAGE) in ``project``."""
    role = role_for(user, project)
    if role is None:
        return False
    limits = _limits(user)
    if action != READ and limits is not None and limits.read_only:
        return False
    needed, permission, _ = ACTIONS[action]
    explicit = user.is_superuser or project.pk in explicit_roles(user)
    if project.name == DEFAULT_PROJECT and not explicit and permission is not None:
        return permission == "" or user.has_perm(permission)  # today's rule, for a team that never made a project
    return at_least(role, needed)


def visible_projects(user: User | AnonymousUser) -> QuerySet[Project]:
    """The projects whose objects ``user`` may see."""
    if not user.is_authenticated:
        return Project.objects.none()
    found = Project.objects.all()
    limits = _limits(user)
    if limits is not None and limits.project_id is not None:
        found = found.filter(pk=limits.project_id)
    if user.is_superuser:
        return found
    # default by its name, in the same query: no round trip of its own on every page. It is there after every
    # migrate and flush (``experiments.apps``), and ``Project.default()`` makes it again before anything is written.
    return found.filter(Q(name=DEFAULT_PROJECT) | Q(pk__in=list(explicit_roles(user))))


def visible_executions(user: User | AnonymousUser) -> ExecutionQuerySet:
    """Every execution the user may see (of their projects), with its experiment and project."""
    found = Execution.objects.select_related("experiment", "experiment__project", "launched_by")
    return cast("ExecutionQuerySet", found.filter(experiment__project__in=visible_projects(user)))


def visible_experiments(user: User | AnonymousUser) -> QuerySet[Experiment]:
    """Every experiment of the projects the user may see."""
    return Experiment.objects.select_related("project").filter(project__in=visible_projects(user))


def project_of(obj: Any) -> Project:
    """The project an execution, experiment or project belongs to."""
    if isinstance(obj, Project):
        return obj
    experiment = obj.experiment if isinstance(obj, Execution) else obj
    return experiment.project


def require_role(user: User | AnonymousUser, obj: Any, action: str) -> None:
    """404 unless the user may see ``obj``'s project; 403 naming the role needed unless they may ``action``."""
    project = project_of(obj)
    if role_for(user, project) is None:
        _audit_denied(user, obj, action, project, hidden=True)
        raise Http404("No such object.")
    if may(user, project, action):
        return
    _audit_denied(user, obj, action, project, hidden=False)
    needed, permission, verb = ACTIONS[action]
    limits = _limits(user)
    if limits is not None and limits.read_only:
        raise PermissionDenied(f"This API token is read-only: it cannot {verb}.")
    if project.name == DEFAULT_PROJECT and permission:
        raise PermissionDenied(
            f"You need the {permission} permission (or the {needed} role in project {project.name}) to {verb}. "
            "Ask an admin for it."
        )
    raise PermissionDenied(f"You need the {needed} role in project {project.name} to {verb}. Ask its maintainer.")


def _audit_denied(user: User | AnonymousUser, obj: Any, action: str, project: Project, hidden: bool) -> None:
    """A refused attempt on a run or an experiment that exists (not on a launch or a page without one)."""
    if not isinstance(obj, (Execution, Experiment)) or not user.is_authenticated:
        return
    execution = obj if isinstance(obj, Execution) else None
    target = f"experiment {obj.pk} ({project.name}/{obj.name})" if isinstance(obj, Experiment) else ""
    record(None, Entry.Action.DENIED, execution=execution, target=target, actor=user, tried=action, hidden=hidden)


def get_experiment_for_user(user: User | AnonymousUser, name: str, project: str | None = None) -> Experiment:
    """The experiment ``name`` of a project the user may see (of ``project`` if named; else default's first), or 404."""
    found = visible_experiments(user).filter(name=name)
    if project:
        found = found.filter(project__name=project)
    experiment = found.order_by("project_id").first()
    if experiment is None:
        raise Http404(f"No experiment named {name!r}.")
    return experiment


def get_execution_for_user(user: User | AnonymousUser, experiment: str, folder_name: str) -> Execution:
    """The execution at ``/experiments/<experiment>/executions/<folder_name>/`` the user may see, or 404."""
    found = visible_executions(user).filter(experiment__name=experiment, folder_name=folder_name).first()
    if found is None:
        raise Http404("No such execution.")
    return found


def get_execution_by_id_for_user(user: User | AnonymousUser, execution_id: int) -> Execution:
    """Any execution the user may see by id (queued runs have no folder yet), or 404 (audited if it exists)."""
    found = visible_executions(user).filter(pk=execution_id).first()
    if found is None:
        hidden = Execution.objects.select_related("experiment__project").filter(pk=execution_id).first()
        if hidden is not None:
            _audit_denied(user, hidden, READ, hidden.experiment.project, hidden=True)
        raise Http404("No such execution.")
    return found


def has_permission(user: User | AnonymousUser, permission: str) -> bool:
    """Whether the user holds a global permission (and, using a read-only token, only for reading)."""
    limits = _limits(user)
    if limits is not None and limits.read_only:
        return False
    return user.is_authenticated and user.has_perm(permission)


def action_of(permission: str) -> str:
    """The action a global permission stands for in the default project."""
    return {LAUNCH_PERMISSION: LAUNCH, EDIT_PERMISSION: EDIT, DELETE_PERMISSION: DELETE}[permission]


def _action_anywhere(user: User | AnonymousUser, action: str) -> bool:
    """Whether the user may do ``action`` in at least one project (to show a Launch button, say). The projects are
    read once per request (the user object lives as long as it), however many buttons ask."""
    projects: list[Project] | None = user.__dict__.get("_gymnos_projects")
    if projects is None:
        projects = user.__dict__["_gymnos_projects"] = list(visible_projects(user))
    return any(may(user, project, action) for project in projects)


def can_launch(user: User | AnonymousUser, obj: Any = None) -> bool:
    return _action_anywhere(user, LAUNCH) if obj is None else may(user, project_of(obj), LAUNCH)


def require_launch_permission(user: User | AnonymousUser, obj: Any = None) -> None:
    """403 unless the user may launch and cancel runs (in ``obj``'s project; by default in ``default``)."""
    require_role(user, obj if obj is not None else Project.default(), LAUNCH)


def can_edit(user: User | AnonymousUser, obj: Any = None) -> bool:
    return _action_anywhere(user, EDIT) if obj is None else may(user, project_of(obj), EDIT)


def can_delete(user: User | AnonymousUser, obj: Any = None) -> bool:
    return _action_anywhere(user, DELETE) if obj is None else may(user, project_of(obj), DELETE)


def require_edit_permission(user: User | AnonymousUser, obj: Any = None) -> None:
    """403 unless the user may edit and archive runs (in ``obj``'s project; by default in ``default``)."""
    require_role(user, obj if obj is not None else Project.default(), EDIT)


def require_delete_permission(user: User | AnonymousUser, obj: Any = None) -> None:
    """403 unless the user may move runs to the trash, restore them and empty the trash (in ``obj``'s project)."""
    require_role(user, obj if obj is not None else Project.default(), DELETE)


def projects_of(user: User | AnonymousUser) -> list[dict[str, str]]:
    """``[{"name": "default", "role": "viewer"}, ...]``: what ``GET /api/projects`` answers."""
    found = []
    for project in visible_projects(user):
        role = role_for(user, project)
        if role is not None:
            found.append({"name": project.name, "role": role})
    return found


def can_revoke(user: User | AnonymousUser, link: ShareLink) -> bool:
    return user.is_authenticated and (link.created_by_id == user.pk or user.is_staff)


def get_share_for_revoke(user: User | AnonymousUser, share_id: int) -> ShareLink:
    link = get_object_or_404(ShareLink.objects.select_related("execution__experiment__project"), pk=share_id)
    if link.execution is not None and link.created_by_id != user.pk:
        require_role(user, link.execution, READ)  # staff revoke others' links only in projects they may see
    if not can_revoke(user, link):
        raise PermissionDenied("Only whoever made a share link (or staff) can revoke it.")
    return link


def share_links_for(user: User) -> QuerySet[ShareLink]:
    """The active links a user may manage: their own, or everyone's for staff."""
    links = ShareLink.objects.select_related("execution", "execution__experiment").filter(revoked_at__isnull=True)
    if not user.is_staff:
        return links.filter(created_by=user)
    # Staff manage others' links too, of runs in projects they may see (a comparison link: only their own).
    return links.filter(Q(created_by=user) | Q(execution__experiment__project__in=visible_projects(user)))


def get_active_share(token: str, kind: str | None = None) -> ShareLink:
    """The share link with this token if it is active (and of ``kind``); 404 otherwise.

    Revoked, expired and unknown tokens look the same to a visitor: nothing is there.
    """
    link = ShareLink.objects.select_related("execution", "execution__experiment").filter(token=token).first()
    if link is None or not link.is_active() or (kind is not None and link.kind != kind):
        raise Http404("This share link does not exist, was revoked, or has expired.")
    return link


def require_share_downloads(link: ShareLink) -> None:
    if not link.allow_downloads:
        raise Http404("Downloads are not part of this share link.")


def projects_where(user: User | AnonymousUser, action: str) -> list[Project]:
    """The projects where ``user`` may ``action``, default first, then by name."""
    Project.default()  # there, even if someone removed it
    found = [project for project in visible_projects(user).order_by("name") if may(user, project, action)]
    return sorted(found, key=lambda project: project.name != DEFAULT_PROJECT)


def launch_projects(user: User | AnonymousUser) -> list[Project]:
    """The projects where ``user`` may launch: the new-run form's choices."""
    return projects_where(user, LAUNCH)


def project_to_write(user: User | AnonymousUser, name: str | None, action: str = LAUNCH) -> Project:
    """The project named ``name`` where ``user`` launches or pushes (``None``: the token's project if it is limited
    to one, else ``default``). ``Http404`` (saying so, nothing else revealed) unless the user may see a project of
    that name; ``PermissionDenied`` naming the role unless they may ``action`` there. The API's ``?project=``, the
    sweeps' and the pushes' one check."""
    Project.default()  # there, even if someone removed it
    if name is None:
        limits = _limits(user)
        limited = limits.project_id if limits is not None else None
        found = visible_projects(user).filter(pk=limited).first() if limited is not None else None
        name = found.name if found is not None else DEFAULT_PROJECT
    target = visible_projects(user).filter(name=name).first()  # default: always there for a user (visible_projects)
    if target is None:
        shown = "".join(c if c.isprintable() else "?" for c in name[:64])
        raise Http404(f"no project named {shown!r} that you may see; GET /api/projects lists yours")
    require_role(user, target, action)
    return target
