"""Keras ``RemoteMonitor`` posts: ``/publish/epoch/end/<token>/`` files each epoch under the
execution the token was made for, where its charts show it like any other epoch.

The token in the URL is the credential (the receiver is CSRF-exempt: a training script has no
session). ``X-Gymnos-Execution``, which Gymnos' own remote_monitor adds, is informational: the
token alone decides the execution.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from audit.models import Entry
from audit.recording import record
from experiments.access import get_execution_by_id_for_user, require_launch_permission
from experiments.display import execution_url
from experiments.forms import ExternalRunForm, parse_epoch_post
from experiments.models import Execution, Experiment, PublishToken, Status


@csrf_exempt
@require_POST
def epoch_end(request: HttpRequest, token: str) -> JsonResponse:
    publish = PublishToken.objects.filter(token=token).first()
    if publish is None:
        raise Http404("No execution receives epochs at this URL.")
    try:
        epoch, metrics = parse_epoch_post(request)
        execution = Execution.objects.record_posted_epoch(publish.execution_id, epoch, metrics)
    except ValueError as exc:
        return JsonResponse({"detail": str(exc)}, status=400)
    PublishToken.objects.filter(pk=publish.pk).update(last_post_at=timezone.now())
    return JsonResponse(
        {"execution": execution.pk, "epoch": epoch, "epochs": execution.epochs, "status": execution.status}
    )


@login_required
@require_POST
def create_token(request: HttpRequest, execution_id: int) -> HttpResponseRedirect:
    assert request.user.is_authenticated  # login_required let only users in
    execution = get_execution_by_id_for_user(request.user, execution_id)
    require_launch_permission(request.user, execution)
    token = PublishToken.objects.create(execution=execution, created_by=request.user)
    record(request, Entry.Action.PUBLISH_TOKEN_CREATE, execution=execution, target=f"publish token {token.pk}")
    messages.success(request, "Epochs posted by Keras RemoteMonitor to the URL below now appear on this page.")
    return redirect(execution_url(execution))


@login_required
@require_POST
def external_run(request: HttpRequest) -> HttpResponseRedirect:
    """A run that trains outside Gymnos' workers and reports its epochs through RemoteMonitor."""
    require_launch_permission(request.user)
    assert request.user.is_authenticated  # login_required let only users in
    form = ExternalRunForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            "Could not add the run: "
            + "; ".join(f"{field}: {' '.join(map(str, errors))}" for field, errors in form.errors.items()),
        )
        return redirect("experiments:new-run")
    with transaction.atomic():
        experiment, _ = Experiment.objects.get_or_create(name=form.cleaned_data["experiment"])
        execution = Execution.objects.create(
            experiment=experiment,
            status=Status.QUEUED,
            title=form.cleaned_data["title"] or "Remote run",
            epochs_total=form.cleaned_data["epochs"],
            launched_by=request.user,
        )
        token = PublishToken.objects.create(execution=execution, created_by=request.user)
    record(request, Entry.Action.LAUNCH, execution=execution, via="remote monitor")
    record(request, Entry.Action.PUBLISH_TOKEN_CREATE, execution=execution, target=f"publish token {token.pk}")
    messages.success(
        request, "Point your script's RemoteMonitor at the URL below; its epochs appear here as they arrive."
    )
    return redirect(execution_url(execution))
