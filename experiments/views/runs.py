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
from experiments.access import can_launch, get_execution_by_id_for_user, require_launch_permission
from experiments.display import execution_url, run_label
from experiments.forms import CALLBACKS, RunForm
from experiments.jobs import launching
from experiments.jobs.queues import QueueUnavailable
from experiments.models import Execution
from experiments.pipeline import ConfigError

EXAMPLE = settings.BASE_DIR / "examples" / "boston_housing.json"


def _starting_config(request: HttpRequest) -> tuple[dict[str, Any], Execution | None]:
    """``?from=<id>`` clones that run's config; otherwise the Boston Housing example."""
    source = request.GET.get("from", "")
    if source.isdigit():
        execution = get_execution_by_id_for_user(request.user, int(source))
        if execution.config is not None:
            return execution.config, execution
        messages.warning(request, f"{run_label(execution)} has no readable config; starting from the example instead.")
    return json.loads(EXAMPLE.read_text()), None


@login_required
@require_http_methods(["GET", "POST"])
def new(request: HttpRequest) -> HttpResponse:
    clone = None
    if request.method == "POST":
        require_launch_permission(request.user)
        form = RunForm(request.POST)
        if form.is_valid():
            try:
                execution = launching.launch(form.build_config(), user=request.user)
            except ConfigError as exc:
                form.add_problems(exc.problems)
            except QueueUnavailable as exc:
                form.add_error(None, str(exc))
            else:
                record(request, Entry.Action.LAUNCH, execution=execution)
                messages.success(request, f"Queued {execution.title or 'the run'}; it starts when a worker is free.")
                return redirect(execution_url(execution))
        elif "config" in form.cleaned_data:  # a field that is not a number: the config's problems still shown
            form.add_problems(launching.config_problems(form.build_config())[1])
    else:
        config, clone = _starting_config(request)
        form = RunForm.for_config(config)
    context = {"form": form, "clone": clone, "can_launch": can_launch(request.user), "callback_defaults": CALLBACKS}
    return render(request, "experiments/run_new.html", context)
