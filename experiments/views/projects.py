"""The projects page: a user's projects with their role, and per project its members; a maintainer grants
and revokes roles there, through ``experiments.membership`` as ``manage.py project`` does (so each change
is audited the same way).

A project the user may not see is a 404, as its runs are; viewers and editors see its members read-only;
granting and revoking need the maintainer role (``access.MANAGE``), a 403 naming it otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from experiments import membership
from experiments.access import MANAGE, may, require_role, role_for, visible_projects
from experiments.models import Project, ProjectRole, Role
from experiments.models.projects import RANK

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

# A user's name is at most 150 characters, a group's 150 and "group:" before it: anything longer names nobody.
HOLDER_MAX = 160


def _project_for(user: User | AnonymousUser, name: str) -> Project:
    """The project ``name`` if the user may see it; 404 otherwise (whether or not it exists)."""
    project = visible_projects(user).filter(name=name).first()
    if project is None:
        raise Http404("No such project.")
    return project


@login_required
@require_GET
def mine(request: HttpRequest) -> HttpResponse:
    user = request.user
    rows = [
        {"project": project, "role": role_for(user, project), "members": project.members}
        for project in visible_projects(user).annotate(members=Count("roles"))
    ]
    return render(request, "experiments/projects/list.html", {"rows": [row for row in rows if row["role"]]})


def members_of(project: Project) -> list[ProjectRole]:
    """The project's roles, maintainers first, then by holder's name."""
    roles = list(ProjectRole.objects.filter(project=project).select_related("user", "group"))
    return sorted(roles, key=lambda role: (-RANK[Role(role.role)], role.holder))


@login_required
@require_GET
def detail(request: HttpRequest, project: str) -> HttpResponse:
    found = _project_for(request.user, project)
    context = {
        "project": found,
        "role": role_for(request.user, found),
        "may_manage": may(request.user, found, MANAGE),
        "members": members_of(found),
        "roles": Role.choices,
        "holder_max": HOLDER_MAX,
    }
    return render(request, "experiments/projects/detail.html", context)


def _holder_text(request: HttpRequest) -> str:
    text = request.POST.get("holder", "").strip()
    if not text:
        raise membership.MembershipError("holder: name a user (alice) or a group (group:students)")
    if len(text) > HOLDER_MAX:
        raise membership.MembershipError(f"holder: at most {HOLDER_MAX} characters, got {len(text)}")
    return text


@login_required
@require_POST
def grant(request: HttpRequest, project: str) -> HttpResponseRedirect:
    found = _project_for(request.user, project)
    require_role(request.user, found, MANAGE)
    role = request.POST.get("role", "")[:32]
    try:
        holder = membership.find_holder(_holder_text(request))
        before = membership.grant(found, holder, role, request=request)
    except membership.MembershipError as exc:
        messages.error(request, f"Could not grant the role: {exc}")
    else:
        was = f" (was {before})" if before else ""
        messages.success(request, f"{holder} is now {role} of {found.name}{was}")
    return _back(request, found)


@login_required
@require_POST
def revoke(request: HttpRequest, project: str) -> HttpResponseRedirect:
    found = _project_for(request.user, project)
    require_role(request.user, found, MANAGE)
    try:
        holder = membership.find_holder(_holder_text(request))
        role = membership.revoke(found, holder, request=request)
    except membership.MembershipError as exc:
        messages.error(request, f"Could not revoke the role: {exc}")
    else:
        messages.success(request, f"{holder} is no longer {role} of {found.name}")
    return _back(request, found)


def _back(request: HttpRequest, project: Project) -> HttpResponseRedirect:
    """To the project's page, or to the list if the change took the user's own sight of it away."""
    request.user.__dict__.pop("_gymnos_roles", None)  # access caches the roles for the request: read them again
    if role_for(request.user, project) is None:
        return redirect(reverse("experiments:projects"))
    return redirect(reverse("experiments:project", args=[project.name]))
