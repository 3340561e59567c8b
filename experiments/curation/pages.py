"""Curation pages beside the run page: bulk actions on the table's selection, the trash, whole
experiments archived, and the disk figures the experiments page loads."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from experiments.access import (
    DELETE,
    can_delete,
    can_edit,
    get_experiment_for_user,
    projects_where,
    require_delete_permission,
    require_edit_permission,
    visible_executions,
)
from experiments.display import counted
from experiments.models import DEFAULT_PROJECT, Execution, Project, Status

from . import disk, edits, trash
from .edits import CurationError
from .forms import BULK_ACTIONS, BulkForm, EmptyTrashForm
from .views import form_errors

UNINDEXED_SHOWN = 200  # trashed folders the index no longer knows, listed on the Trash page


def _next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return fallback


def _require(request: HttpRequest, action: str) -> None:
    """403 unless the user may do ``action`` in some project (each run is checked in its own, ``_selected``)."""
    if action == "delete" and not can_delete(request.user):
        require_delete_permission(request.user)
    elif action != "delete" and not can_edit(request.user):
        require_edit_permission(request.user)


def _selected(request: HttpRequest, ids: list[int], action: str) -> list[Execution]:
    """The runs asked for that the user may see (others are not there for them), each one the user may
    ``action`` (403 naming the role otherwise)."""
    runs = list(visible_executions(request.user).filter(pk__in=ids).order_by("experiment__name", "pk"))
    if action in BULK_ACTIONS:
        for execution in runs:
            (require_delete_permission if action == "delete" else require_edit_permission)(request.user, execution)
    return runs


def _bulk_done(request: HttpRequest, action: str, runs: list[Execution], tags: list[str]) -> None:
    """Do ``action`` to each run; one message with what changed, and one with what could not."""
    changed, problems, freed = 0, [], 0
    for execution in runs:
        try:
            if action == "tag":
                changed += edits.add_tags([execution], tags, request=request)
            elif action == "untag":
                changed += edits.remove_tags([execution], tags, request=request)
            elif action in {"archive", "unarchive"}:
                changed += edits.set_archived(execution, action == "archive", request=request)
            else:
                freed += trash.delete(execution, request=request)
                changed += 1
        except CurationError as exc:
            problems.append(str(exc))
    what = {
        "tag": f"Tagged {changed} run{'s' if changed != 1 else ''} {', '.join(tags)}",
        "untag": f"Removed {', '.join(tags)} from {changed} run{'s' if changed != 1 else ''}",
        "archive": f"Archived {changed} run{'s' if changed != 1 else ''}",
        "unarchive": f"Unarchived {changed} run{'s' if changed != 1 else ''}",
        "delete": f"Moved {changed} run{'s' if changed != 1 else ''} ({filesizeformat(freed)}) to the trash",
    }[action]
    messages.success(request, what + ".")
    if problems:
        messages.error(request, f"{len(problems)} left as they were: " + "; ".join(problems[:10]))


@login_required
@require_http_methods(["GET", "POST"])
def bulk(request: HttpRequest) -> HttpResponse:
    """GET: the confirmation (how many runs, how many bytes); POST: the action, then back to the table."""
    form = BulkForm(request.POST if request.method == "POST" else request.GET)
    action = form.data.get("action", "")
    if action in BULK_ACTIONS:
        _require(request, str(action))
    if not form.is_valid():
        if request.method == "POST" or set(form.errors) - {"tags"}:
            messages.error(request, f"Nothing done: {form_errors(form)}")
            return redirect(_next(request, reverse("experiments:index")))
    runs = _selected(request, form.cleaned_data["runs"], str(action))
    experiments = sorted({execution.experiment.name for execution in runs})
    fallback = reverse("experiments:experiment", args=[experiments[0]]) if len(experiments) == 1 else "/"
    if request.method == "POST":
        _bulk_done(request, action, runs, form.cleaned_data.get("tags") or [])
        return redirect(_next(request, fallback))
    sizes = [execution.size_bytes for execution in runs]
    context: dict[str, Any] = {
        "form": form,
        "action": action,
        "verb": BULK_ACTIONS[action],
        "runs": runs,
        "ids": ",".join(str(execution.pk) for execution in runs),
        "bytes": sum(size or 0 for size in sizes),
        "unmeasured": sum(size is None for size in sizes),
        "next": _next(request, fallback),
        "tags": form.data.get("tags", ""),
    }
    return render(request, "experiments/curation/bulk.html", context)


@login_required
@require_GET
def trash_page(request: HttpRequest) -> HttpResponse:
    deleted = (
        visible_executions(request.user)
        .filter(status=Status.DELETED)
        .select_related("experiment", "deleted_by")
        .order_by("-deleted_at", "-pk")
    )
    rows = [{"execution": execution, "bytes": trash.trashed_bytes(execution)} for execution in deleted[:500]]
    base = trash.trash_root()
    # Folders without a row could be any project's: shown to whoever may delete in default (today's trash keepers).
    orphans = trash.orphans() if can_delete(request.user, Project.default()) else iter(())
    unindexed = [
        {"path": folder.relative_to(base), "deleted_at": when, "bytes": trash.folder_bytes(folder)}
        for folder, when in itertools.islice(orphans, UNINDEXED_SHOWN)
    ]
    return render(
        request,
        "experiments/curation/trash.html",
        {
            "rows": rows,
            "unindexed": unindexed,
            "unindexed_shown": UNINDEXED_SHOWN,
            "count": deleted.count(),
            "bytes": sum(row["bytes"] or 0 for row in rows),
            "can_delete": can_delete(request.user),
            "empty_projects": (names := [project.name for project in projects_where(request.user, DELETE)]),
            "empty_scoped": names != [DEFAULT_PROJECT],  # a one-team install: nothing to say
            "empty_form": EmptyTrashForm(),
        },
    )


@login_required
@require_POST
def empty(request: HttpRequest) -> HttpResponseRedirect:
    """Empty the trash of the projects where the user is a maintainer (in default: the delete permission)."""
    maintained = projects_where(request.user, DELETE)
    if not maintained:
        require_delete_permission(request.user)  # none: default's 403, saying what is missing
    form = EmptyTrashForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"The trash was not emptied: {form_errors(form)}")
        return redirect(reverse("experiments:trash"))
    days = form.cleaned_data["older_than"]
    report = trash.empty_trash(dt.timedelta(days=days), request=request, projects=maintained)
    n = len(report.removed)
    names = [project.name for project in maintained]
    where = "" if names == [DEFAULT_PROJECT] else f", in the projects where you are a maintainer: {', '.join(names)}"
    messages.success(
        request,
        f"Removed for good {n} run{'s' if n != 1 else ''} deleted {days} or more days ago "
        f"({filesizeformat(report.bytes)} freed){where}.",
    )
    if report.problems:
        messages.error(request, "; ".join(report.problems[:10]))
    return redirect(reverse("experiments:trash"))


@login_required
@require_POST
def archive_experiment(request: HttpRequest, experiment: str, archived: bool) -> HttpResponseRedirect:
    """Archive a whole experiment, or (``archived`` False, from the URL) unarchive it."""
    found = get_experiment_for_user(request.user, experiment, request.POST.get("project"))
    require_edit_permission(request.user, found)
    changed, problems = edits.set_experiment_archived(found, archived, request=request)
    verb = "Archived" if archived else "Unarchived"
    messages.success(request, f"{verb} {found.name} and {changed} of its runs.")
    if problems:
        messages.error(request, f"{counted(len(problems), 'run')} left as they were: " + "; ".join(problems[:10]))
    return redirect(_next(request, reverse("experiments:experiment", args=[found.name])))


@login_required
@require_GET
def disk_usage(request: HttpRequest) -> JsonResponse:
    """The experiments page's disk panel, loaded after the page (a grouped query over every run)."""
    return JsonResponse(disk.summary(visible_executions(request.user)))
