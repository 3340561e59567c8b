"""One execution: its page, the JSON its page polls (status, charts, files), its log, Cancel, Resume."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from audit.models import Entry
from audit.recording import record
from experiments import charts, files, lineage, live, logtail
from experiments.access import (
    can_launch,
    can_revoke,
    get_execution_by_id_for_user,
    get_execution_for_user,
    require_launch_permission,
)
from experiments.display import (
    duration,
    eta_seconds,
    execution_url,
    hardware_label,
    progress_percent,
    run_label,
    stages,
)
from experiments.forms import ShareForm
from experiments.jobs import launching, resuming
from experiments.jobs.queues import QueueUnavailable
from experiments.models import LIVE, Execution, ShareLink, Status
from experiments.pipeline import ConfigError
from experiments.pipeline.resume import has_kept_state
from experiments.views.downloads import zip_name


class Links:
    """Where an execution page's pieces come from: the team's URLs, or a share link's."""

    def __init__(self, execution: Execution, share: ShareLink | None = None) -> None:
        self.execution, self.share = execution, share
        if share is None:
            self.data = reverse("experiments:execution-data", args=[execution.pk])
            self.log = reverse("experiments:execution-log", args=[execution.pk])
            self.events = reverse("experiments:execution-events", args=[execution.pk])
        else:
            self.data = reverse("experiments:shared-data", args=[share.token])
            self.log = reverse("experiments:shared-log", args=[share.token])
            self.events = reverse("experiments:shared-events", args=[share.token])

    @property
    def downloads_allowed(self) -> bool:
        return self.share is None or self.share.allow_downloads

    def file(self, path: str) -> str | None:
        if not self.downloads_allowed or not self.execution.folder_name:
            return None
        if self.share is not None:
            return reverse("experiments:shared-file", args=[self.share.token, path])
        return reverse(
            "experiments:execution-file", args=[self.execution.experiment.name, self.execution.folder_name, path]
        )

    @property
    def zip(self) -> str | None:
        if not self.downloads_allowed or not self.execution.folder_name:
            return None
        if self.share is not None:
            return reverse("experiments:shared-zip", args=[self.share.token])
        return reverse("experiments:execution-zip", args=[self.execution.experiment.name, self.execution.folder_name])


def status_context(request: HttpRequest, execution: Execution, links: Links) -> dict[str, Any]:
    return {
        "execution": execution,
        "live": execution.status in LIVE,
        "progress": progress_percent(execution),
        "eta": eta_seconds(execution),
        "duration": duration(execution),
        "can_cancel": links.share is None and can_launch(request.user, execution) and execution.status in LIVE,
        "can_resume": links.share is None and can_launch(request.user, execution) and _resumable(execution),
        "next_attempt": execution.attempts + 2,
        "shared": links.share is not None,
    }


def _resumable(execution: Execution) -> bool:
    """A cancelled or failed run whose folder keeps a state to go on from (``resuming.resume_by_hand``)."""
    ended = execution.status in (Status.FAILED, Status.CANCELLED)
    return ended and bool(execution.folder_path) and has_kept_state(execution.folder_path)


def _files_context(execution: Execution, links: Links, found: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    found = files.list_downloads(execution) if found is None else found
    downloads = [{**item, "url": links.file(item["path"])} for item in found]
    return {
        "downloads": downloads,
        "zip_url": links.zip if downloads else None,
        "zip_name": zip_name(execution) if execution.folder_name else "",
        "downloads_allowed": links.downloads_allowed,
        "summary": sorted((execution.summary or {}).items()),
        "test_metrics": sorted((execution.test_metrics or {}).items()),
    }


def payload(request: HttpRequest, execution: Execution, links: Links) -> dict[str, Any]:
    """What the page polls: status, files and hardware (as the partials render them) and the chart data."""
    found = files.list_downloads(execution)
    return {
        **chart_payload(request, execution, links, found),
        "status_html": render_to_string(
            "experiments/_partials/execution_status.html", status_context(request, execution, links), request
        ),
        "files_html": render_to_string(
            "experiments/_partials/execution_files.html", _files_context(execution, links, found), request
        ),
        "hardware_html": render_to_string(
            "experiments/_partials/execution_hardware.html",
            {"hardware": execution.hardware or {}, "shared": links.share is not None},
            request,
        ),
    }


def chart_payload(
    request: HttpRequest, execution: Execution, links: Links, found: list[dict[str, Any]]
) -> dict[str, Any]:
    """The charts' part of ``payload``, with no HTML: also written into the page itself (``first-data``), so that a
    first view draws its curves as soon as Plotly has run, without a second round trip (issue 25)."""
    traces = charts.stored([execution.pk])[execution.pk]  # the chart copies: bounded, however long the run
    markers = charts.checkpoint_markers(found, execution.pk, links.file) if links.downloads_allowed else []
    may_fork = links.share is None and can_launch(request.user, execution) and bool(execution.config)
    for marker in markers:
        marker["fork_url"] = lineage.fork_url(execution, marker["x"]) if may_fork else None
    return {
        "id": execution.pk,
        "status": execution.status,
        "live": execution.status in LIVE,
        "epochs": execution.epochs,
        "epochs_total": execution.epochs_total,
        "eta_seconds": eta_seconds(execution),
        "permalink": execution_url(execution) if links.share is None and execution.folder_name else None,
        "charts": charts.execution_charts(traces),
        # The x of the charts' "wall time" axis (issue 12's chart controls).
        "epoch_seconds": charts.epoch_seconds(
            execution.pk,
            traces,
            execution.elapsed,
            execution.started_at,
            execution.finished_at,
            also=[marker["x"] for marker in markers],
        ),
        "checkpoints": markers,
        # A fork's parent's curves, which its own continue (the parent's epochs, then forked_at_epoch + its own).
        "parent_curves": lineage.parent_curves(execution) if links.share is None else None,
        "elapsed": stages(execution.elapsed),
    }


def _logs_steps_live(execution: Execution) -> bool:
    """A live run whose config asks for per-step metrics: its step charts fill in while it trains."""
    training = execution.config.get("training") if isinstance(execution.config, dict) else None
    every = training.get("log_every_steps") if isinstance(training, dict) else None
    return execution.status in LIVE and isinstance(every, int) and every > 0


def page_context(request: HttpRequest, execution: Execution, links: Links) -> dict[str, Any]:
    config = execution.config
    found = files.list_downloads(execution)
    may_fork = links.share is None and can_launch(request.user, execution)
    return {
        "execution": execution,
        "label": run_label(execution),
        "links": links,
        "hardware": execution.hardware or {},
        "hardware_label": hardware_label(execution.hardware),
        "config_text": json.dumps(config, indent=2) if config is not None else "",
        "shared": links.share is not None,
        "can_launch": links.share is None and can_launch(request.user),
        "share_links": [
            {"link": link, "can_revoke": can_revoke(request.user, link)}
            for link in execution.share_links.filter(revoked_at__isnull=True).select_related("created_by")
            if link.is_active()
        ]
        if links.share is None
        else [],
        "publish_tokens": list(execution.publish_tokens.all()) if links.share is None else [],
        "page_data": {
            "data_url": links.data,
            "log_url": links.log,
            "events_url": links.events if live.streams_served(request) else "",
            "live": execution.status in LIVE,
        },
        "steps_panel": links.share is None and (bool(execution.steps) or _logs_steps_live(execution)),
        # The charts' data as the page's first poll would answer it: drawn as soon as Plotly has run.
        "first_data": chart_payload(request, execution, links, found),
        "plotly_bundle": charts.plotly_bundle([(config, execution.evaluation)]),
        "share_form": ShareForm(),
        **status_context(request, execution, links),
        **_files_context(execution, links, found),
        **(lineage.lineage_context(execution, found, may_fork) if links.share is None else {}),
    }


@login_required
@require_GET
def detail(request: HttpRequest, experiment: str, folder: str) -> HttpResponse:
    execution = get_execution_for_user(request.user, experiment, folder)
    return render(request, "experiments/execution_detail.html", page_context(request, execution, Links(execution)))


@login_required
@require_GET
def by_id(request: HttpRequest, execution_id: int) -> HttpResponse:
    """A run by id: the permalink once it has a folder; its own page while it waits for one."""
    execution = get_execution_by_id_for_user(request.user, execution_id)
    if execution.folder_name:
        return redirect(execution_url(execution))
    return render(request, "experiments/execution_detail.html", page_context(request, execution, Links(execution)))


@login_required
@require_GET
def data(request: HttpRequest, execution_id: int) -> JsonResponse:
    execution = get_execution_by_id_for_user(request.user, execution_id)
    return JsonResponse(payload(request, execution, Links(execution)))


@login_required
@require_GET
def log(request: HttpRequest, execution_id: int) -> JsonResponse:
    return JsonResponse(
        log_payload(get_execution_by_id_for_user(request.user, execution_id), request.GET.get("offset"))
    )


def log_payload(execution: Execution, offset: str | None) -> dict[str, Any]:
    """The last 200 lines without an offset; what was appended since ``offset`` with one (``logtail``'s bound).

    A log that is not a file inside the run's folder reads as empty, with the reason.
    """
    live = execution.status in LIVE
    try:
        chunk = logtail.read_from(execution, int(offset)) if offset and offset.isdigit() else logtail.tail(execution)
    except Http404:
        reason = "no log yet" if not execution.folder_path else "the log is not a file inside this run's folder"
        return {"offset": 0, "size": 0, "data": "", "cut": False, "live": live, "unavailable": reason}
    return {**chunk, "live": live}


@login_required
@require_POST
def cancel(request: HttpRequest, execution_id: int) -> HttpResponseRedirect:
    execution = get_execution_by_id_for_user(request.user, execution_id)
    require_launch_permission(request.user, execution)
    try:
        cancelled = launching.cancel(execution)
    except QueueUnavailable as exc:
        messages.error(request, f"Could not cancel {run_label(execution)}: {exc}")
        return redirect(execution_url(execution))
    if cancelled:
        record(request, Entry.Action.CANCEL, execution=execution)
        messages.success(request, f"Cancelled {run_label(execution)}.")
    else:
        execution.refresh_from_db(fields=["status"])
        messages.error(
            request, f"{run_label(execution)} is {execution.status}; only queued or running runs can be cancelled."
        )
    execution.refresh_from_db()
    return redirect(execution_url(execution))


@login_required
@require_POST
def resume(request: HttpRequest, execution_id: int) -> HttpResponseRedirect:
    """The Resume button: queue a cancelled or failed run again from its kept state (optionally to more epochs)."""
    execution = get_execution_by_id_for_user(request.user, execution_id)
    require_launch_permission(request.user, execution)
    asked = request.POST.get("epochs", "").strip()
    try:
        epochs = int(asked) if asked else None
    except ValueError:
        messages.error(
            request, f"Could not resume {run_label(execution)}: epochs must be a whole number, not {asked!r}."
        )
        return redirect(execution_url(execution))
    try:
        execution = resuming.resume_by_hand(execution, epochs)
    except (resuming.NotResumable, ConfigError, QueueUnavailable) as exc:
        messages.error(request, f"Could not resume {run_label(execution)}: {exc}")
        return redirect(execution_url(execution))
    record(request, Entry.Action.RESUME, execution=execution, attempt=execution.attempts + 1, epochs=epochs)
    messages.success(request, f"Resumed {run_label(execution)} (attempt {execution.attempts + 1}).")
    return redirect(execution_url(execution))
