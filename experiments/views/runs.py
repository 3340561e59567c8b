"""The new-run form: common choices as fields, the full JSON beside them, clone from a run."""

import json
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from audit.models import Entry
from audit.recording import record
from experiments.access import (
    can_launch,
    get_execution_by_id_for_user,
    launch_projects,
    project_to_write,
    require_launch_permission,
)
from experiments.display import execution_url, run_label
from experiments.forms import CALLBACKS, RunForm
from experiments.jobs import forking, launching
from experiments.jobs.queues import QueueUnavailable
from experiments.models import Execution
from experiments.pipeline import ConfigError

EXAMPLE = settings.BASE_DIR / "examples" / "boston_housing.json"


def _fork_of(request: HttpRequest, data: Any) -> dict[str, Any] | None:
    """``fork=<epoch|last>`` beside ``from=<id>`` (the query, or the form's hidden fields): train on from that run's
    weights there; None for a run of its own."""
    source, parent_id = str(data.get("fork", "")), str(data.get("from", ""))
    if not source or not parent_id.isdigit():
        return None
    parent = get_execution_by_id_for_user(request.user, int(parent_id))
    shown = "its last state" if source == "last" else f"its checkpoint at epoch {source}"
    return {"parent": parent, "source": source, "shown": shown}


def _source(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def _launch(request: HttpRequest, form: RunForm, fork: dict[str, Any] | None) -> Execution:
    """Queue the form's config: a run of its own in the project chosen, or a fork from ``fork``'s parent, in its
    project (``ConfigError`` either way)."""
    config = form.build_config()
    if fork is None:
        # The choices were the projects where the user may launch; checked again as the API checks ?project=.
        project = project_to_write(request.user, form.cleaned_data["project"])
        execution = launching.launch(config, user=request.user, project=project)
        record(request, Entry.Action.LAUNCH, execution=execution)
        return execution
    parent = fork["parent"]
    execution = forking.fork(parent, _source(fork["source"]), user=request.user, config=config)
    record(request, Entry.Action.LAUNCH, execution=execution, fork_of=parent.pk, at_epoch=execution.forked_at_epoch)
    return execution


def _starting_config(request: HttpRequest) -> tuple[dict[str, Any], Execution | None]:
    """``?from=<id>`` clones that run's config; otherwise the Boston Housing example."""
    source = request.GET.get("from", "")
    if source.isdigit():
        execution = get_execution_by_id_for_user(request.user, int(source))
        if execution.config is not None:
            return execution.config, execution
        messages.warning(request, f"{run_label(execution)} has no readable config; starting from the example instead.")
    return json.loads(EXAMPLE.read_text()), None


def _launch_choices(request: HttpRequest) -> list[str]:
    return [project.name for project in launch_projects(request.user)]


@login_required
@require_http_methods(["GET", "POST"])
def new(request: HttpRequest) -> HttpResponse:
    clone = None
    fork = _fork_of(request, request.POST if request.method == "POST" else request.GET)
    # A fork trains in its parent's project; a run of its own in one the user chooses among those they may launch in.
    projects = [fork["parent"].experiment.project.name] if fork is not None else _launch_choices(request)
    if request.method == "POST":
        if fork is not None or not projects:  # no project to launch in: default's 403, saying what is missing
            require_launch_permission(request.user, fork["parent"] if fork is not None else None)
        form = RunForm(request.POST, projects=projects)
        if form.is_valid():
            try:
                execution = _launch(request, form, fork)
            except ConfigError as exc:
                form.add_problems(exc.problems)
            except QueueUnavailable as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Queued {execution.title or 'the run'}; it starts when a worker is free.")
                return redirect(execution_url(execution))
        elif "config" in form.cleaned_data:  # a field that is not a number: the config's problems still shown
            form.add_problems(launching.config_problems(form.build_config())[1])
    else:
        config, clone = _starting_config(request)
        form = RunForm.for_config(config, projects=projects)
    may = can_launch(request.user, fork["parent"]) if fork is not None else can_launch(request.user)
    context = {"form": form, "clone": clone, "fork": fork, "can_launch": may}
    context["callback_defaults"] = CALLBACKS
    return render(request, "experiments/run_new.html", context)
