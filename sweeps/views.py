"""The sweeps' pages: the list, "Sweep from this run", the live sweep page, cancel, and share links."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.models import Entry
from audit.recording import record
from experiments import live
from experiments.access import (
    LAUNCH,
    READ,
    SHARE,
    can_launch,
    get_execution_by_id_for_user,
    launch_projects,
    project_to_write,
    require_launch_permission,
    require_role,
    visible_executions,
)
from experiments.display import counted, run_label
from experiments.forms import ShareForm
from experiments.jobs.queues import QueueUnavailable
from experiments.models import DEFAULT_PROJECT, Execution, Status
from experiments.pipeline import ConfigError, Problem, jsonlimits

from .forms import DISTRIBUTIONS, SweepForm, rows_for
from .launching import cancel_sweep, heal, launch_sweep
from .models import Sweep, SweepShare
from .scope import get_sweep_for_user, project_of_sweep, visible_sweeps
from .summary import list_summaries, summarise, trials_of

POLL_MS = 2000
RECENT_RUNS = 200  # the runs the "New sweep" page offers to start from, newest first


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    sweeps = list(visible_sweeps(request.user).select_related("created_by")[:200])
    rows = [{"sweep": sweep, "summary": summary} for sweep, summary in zip(sweeps, list_summaries(sweeps), strict=True)]
    return render(request, "sweeps/list.html", {"rows": rows, "can_launch": can_launch(request.user)})


@login_required
@require_http_methods(["GET", "POST"])
def new(request: HttpRequest) -> HttpResponse:
    """``?from=<id>``: the run whose config the sweep starts from, its paths listed to choose from; without it,
    a run to choose, or a sweep document to paste."""
    source = request.GET.get("from", "")
    if not source.isdigit():
        return _from_document(request)
    execution = get_execution_by_id_for_user(request.user, int(source))
    if not isinstance(execution.config, dict):
        messages.error(request, f"{run_label(execution)} has no readable config to start a sweep from.")
        return redirect("experiments:execution-by-id", execution.pk)
    rows = rows_for(execution.config)
    projects = _launch_choices(request)
    # the sweep's project: its run's first, if the user may launch there
    offered: dict[str, Any] = {"rows": rows, "projects": projects, "project": execution.experiment.project.name}
    if request.method == "POST":
        if not projects:
            require_launch_permission(request.user)  # nowhere to launch: default's 403, saying what is missing
        form = SweepForm(request.POST, **offered)
        if form.is_valid():
            document = form.document(execution.pk)
            if not document["parameters"]:
                form.add_error(None, "Tick at least one config path to search, and give it a range or choices.")
            else:
                try:
                    project = project_to_write(request.user, form.cleaned_data["project"])
                    sweep = launch_sweep(document, user=request.user, project=project)
                except ConfigError as exc:
                    form.add_problems(exc.problems)
                except QueueUnavailable as exc:
                    form.add_error(None, str(exc))
                else:
                    return _started(request, sweep)
    else:
        form = SweepForm(initial={"metric": _default_metric(execution)}, **offered)
    context = {
        "form": form,
        "rows": form.bound_rows(),
        "execution": execution,
        "label": run_label(execution),
        "metrics": sorted(name for name in execution.summary or {} if not name.startswith("test_")),
        "can_launch": can_launch(request.user),
        "distributions": DISTRIBUTIONS,
    }
    return render(request, "sweeps/new.html", context)


def _started(request: HttpRequest, sweep: Sweep) -> HttpResponseRedirect:
    record(request, Entry.Action.SWEEP_LAUNCH, target=f"sweep {sweep.pk} ({sweep.name})")
    # Tagged, so the sweep's page drops it once the sweep has ended (static/js/sweep.js).
    messages.success(request, f"Started {sweep.name}: {counted(sweep.trials_total, 'trial')}.", extra_tags="started")
    return redirect("sweeps:detail", sweep.pk)


def _from_document(request: HttpRequest) -> HttpResponse:
    """The "New sweep" page: choose a run to start from (its paths come next), or paste a sweep document."""
    runs = list(
        visible_executions(request.user)
        .filter(config__isnull=False)
        .exclude(status=Status.DELETED)
        .select_related("experiment")
        .order_by("-pk")[:RECENT_RUNS]
    )
    text = request.POST.get("document", "") if request.method == "POST" else _example_document(runs)
    problems: list[Any] = []
    projects = _launch_choices(request)
    chosen = request.POST.get("project", "")[:64] if request.method == "POST" else ""
    chosen = chosen or (DEFAULT_PROJECT if DEFAULT_PROJECT in projects or not projects else projects[0])
    if request.method == "POST":
        if not projects:
            require_launch_permission(request.user)  # nowhere to launch: default's 403, saying what is missing
        try:
            if chosen not in projects:  # the same words whether a project of that name exists or not
                raise ConfigError([Problem("project", f"{chosen} is not a project where you may launch runs")])
            project = project_to_write(request.user, chosen)
            sweep = launch_sweep(
                jsonlimits.loads(text, what="The sweep document", refuse_nul=True), user=request.user, project=project
            )
        except jsonlimits.JSONLimitError as exc:
            problems = [Problem("", str(exc))]
        except ConfigError as exc:
            problems = exc.problems
        except QueueUnavailable as exc:
            problems = [Problem("", str(exc))]
        else:
            return _started(request, sweep)
    choices = [{"pk": run.pk, "label": run_label(run), "title": run.title, "status": run.status} for run in runs]
    context = {"runs": choices, "document": text, "problems": problems, "can_launch": can_launch(request.user)}
    context |= {"projects": projects, "chosen_project": chosen}
    return render(request, "sweeps/start.html", context)


def _launch_choices(request: HttpRequest) -> list[str]:
    return [project.name for project in launch_projects(request.user)]


def _example_document(runs: list[Execution]) -> str:
    """A document to start from: the newest run's learning rate and first layer's width, searched by TPE."""
    base: Any = runs[0].pk if runs else {"...": "a training config, or the id of a run"}
    example = {
        "base": base,
        "parameters": {
            "model.compilation.optimizer.learning_rate": {"distribution": "log_uniform", "low": 0.0001, "high": 0.01},
            "model.network[0].units": {"choice": [16, 32, 64]},
        },
        "method": "tpe",
        "trials": 8,
        "parallel": 2,
        "objective": {"metric": "val_loss"},
    }
    return json.dumps(example, indent=2)


def _default_metric(execution: Execution) -> str:
    names = execution.summary or {}
    return "val_loss" if "val_loss" in names or not names else "loss"


def _page_context(request: HttpRequest, sweep: Sweep, share: SweepShare | None) -> dict[str, Any]:
    trials = trials_of(sweep)
    summary = summarise(sweep, trials)
    data_url = reverse("sweeps:shared-data", args=[share.token]) if share else reverse("sweeps:data", args=[sweep.pk])
    context: dict[str, Any] = {
        "sweep": sweep,
        "summary": summary,
        "summary_trials": trials,
        "shared": share is not None,
        "share": share,
        "page_data": {
            "data_url": data_url,
            "poll_ms": POLL_MS,
            "run_url": None if share else reverse("experiments:execution-by-id", args=[0]),
            "live": sweep.is_running,
            # The sweep's stream (sweeps.stream) where the server serves streams; a shared page polls.
            "events_url": reverse("experiments:sweep-events", args=[sweep.pk])
            if share is None and live.streams_served(request)
            else "",
            "summary": summary,
        },
    }
    if share is None:
        context["can_launch"] = can_launch(request.user)
        context["share_form"] = ShareForm()
        context["share_links"] = [
            {"link": link, "can_revoke": _can_revoke(request.user, link)}
            for link in sweep.share_links.filter(revoked_at__isnull=True).select_related("created_by")
        ]
    return context


@login_required
@require_GET
def detail(request: HttpRequest, sweep_id: int) -> HttpResponse:
    sweep = get_sweep_for_user(request.user, sweep_id)
    return render(request, "sweeps/detail.html", _page_context(request, sweep, None))


def _data(request: HttpRequest, sweep: Sweep, shared: bool) -> JsonResponse:
    if sweep.is_running and not shared:  # the safety checks, as the API's detail runs them
        Execution.objects.mark_lost()
        heal([sweep])
    trials = trials_of(sweep)
    summary = summarise(sweep, trials)
    html = render_to_string(
        "sweeps/_partials/summary.html",
        {"sweep": sweep, "summary": summary, "trials": trials, "shared": shared},
        request=request,
    )
    return JsonResponse({"summary": summary, "html": html})


@login_required
@require_GET
def data(request: HttpRequest, sweep_id: int) -> JsonResponse:
    return _data(request, get_sweep_for_user(request.user, sweep_id), shared=False)


@login_required
@require_POST
def cancel(request: HttpRequest, sweep_id: int) -> HttpResponseRedirect:
    sweep = get_sweep_for_user(request.user, sweep_id, LAUNCH)
    try:
        cancelled = cancel_sweep(sweep)
    except QueueUnavailable as exc:
        messages.error(request, str(exc))
        return redirect("sweeps:detail", sweep.pk)
    if cancelled:
        record(request, Entry.Action.SWEEP_CANCEL, target=f"sweep {sweep.pk} ({sweep.name})")
        messages.success(
            request, f"Cancelled {sweep.name}: its queued trials left the queue, its running ones stopped."
        )
    else:
        messages.info(request, f"{sweep.name} had already ended.")
    return redirect("sweeps:detail", sweep.pk)


# --- share links ---------------------------------------------------------------------------------


def _can_revoke(user: Any, link: SweepShare) -> bool:
    return bool(user.is_authenticated and (link.created_by_id == user.pk or user.is_staff))


@login_required
@require_POST
def share(request: HttpRequest, sweep_id: int) -> HttpResponseRedirect:
    assert request.user.is_authenticated  # login_required let only users in
    sweep = get_sweep_for_user(request.user, sweep_id, SHARE)
    form = ShareForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Could not share: " + "; ".join(str(e) for e in form.errors.values()))
        return redirect("sweeps:detail", sweep.pk)
    link = SweepShare.objects.create(sweep=sweep, created_by=request.user, expires_at=form.cleaned_data["expires_in"])
    record(request, Entry.Action.SHARE_CREATE, target=f"share link to sweep {sweep.pk}")
    url = request.build_absolute_uri(reverse("sweeps:shared", args=[link.token]))
    messages.success(request, f"Share link created: {url}", extra_tags="share")
    return redirect("sweeps:detail", sweep.pk)


@login_required
@require_POST
def revoke(request: HttpRequest, share_id: int) -> HttpResponseRedirect:
    link = get_object_or_404(SweepShare.objects.select_related("sweep"), pk=share_id)
    if link.created_by_id != request.user.pk:
        require_role(request.user, project_of_sweep(link.sweep), READ)  # staff: only in projects they may see
    if not _can_revoke(request.user, link):
        raise PermissionDenied("Only whoever made a share link (or staff) can revoke it.")
    if link.revoked_at is None:
        link.revoked_at = timezone.now()
        link.save(update_fields=["revoked_at"])
        record(request, Entry.Action.SHARE_REVOKE, target=f"share link to sweep {link.sweep_id}")
    messages.success(request, "Share link revoked: it no longer opens anything.")
    return redirect("sweeps:detail", link.sweep_id)


def _active_share(token: str) -> SweepShare:
    link = SweepShare.objects.select_related("sweep").filter(token=token).first()
    if link is None or not link.is_active():
        raise Http404("This share link does not exist, was revoked, or has expired.")
    return link


@require_GET
def shared(request: HttpRequest, token: str) -> HttpResponse:
    link = _active_share(token)
    return render(request, "sweeps/detail.html", _page_context(request, link.sweep, link))


@require_GET
def shared_data(request: HttpRequest, token: str) -> JsonResponse:
    return _data(request, _active_share(token).sweep, shared=True)
