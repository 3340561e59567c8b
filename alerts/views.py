"""The alerts' pages: the rules page (with the in-app alerts), and the small forms on a run's, an experiment's and a
sweep's page that make a rule. Every POST redirects; a form's problems come back as messages."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from audit.models import Entry
from audit.recording import record
from experiments.access import get_execution_by_id_for_user, visible_experiments
from sweeps.scope import get_sweep_for_user

from .forms import RuleForm
from .models import Delivery, Rule, last_deliveries, unread_for

LAST_DELIVERIES = 5
RULES_SHOWN = 200
ALERTS_SHOWN = 50


def rules_of(user: Any) -> Any:
    """The rules a user may see and delete: their own (staff too: a rule for everyone is its maker's)."""
    return Rule.objects.filter(owner=user).select_related("execution__experiment", "experiment", "sweep")


def get_rule_for_user(user: Any, rule_id: int) -> Rule:
    """The user's rule, or 404 (another user's rule is not shown to exist)."""
    return get_object_or_404(rules_of(user), pk=rule_id)


def made(request: HttpRequest, rule: Rule, via: str = "page") -> None:
    record(request, Entry.Action.ALERT_CREATE, execution=rule.execution, target=str(rule)[:255], via=via)


def remove(request: HttpRequest, rule: Rule, via: str = "page") -> None:
    """Delete ``rule`` (its deliveries with it), with its audit entry."""
    record(request, Entry.Action.ALERT_DELETE, execution=rule.execution, target=str(rule)[:255], via=via)
    rule.delete()


def _save(request: HttpRequest, scope: str, **watched: Any) -> bool:
    form = RuleForm(request.POST, user=request.user)
    if not form.is_valid():
        for field, errors in form.errors.items():
            for error in errors:
                messages.error(request, f"The alert was not made: {field}: {error}")
        return False
    rule = form.build(scope, **watched)
    made(request, rule)
    messages.success(request, f"Alert made: {rule.describe()}.")
    return True


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    rules = list(rules_of(request.user)[:RULES_SHOWN])
    last = last_deliveries(rules, LAST_DELIVERIES)
    for rule in rules:
        rule.last = last[rule.pk]
    alerts = (
        Delivery.objects.filter(rule__owner_id=request.user.pk, rule__channel=Rule.Channel.IN_APP, status="sent")
        .select_related("execution__experiment")
        .order_by("-created_at", "-pk")[:ALERTS_SHOWN]
    )
    context = {
        "rules": rules,
        "alerts": alerts,
        "form": RuleForm(user=request.user),
        "scopes": [(Rule.Scope.MINE, Rule.Scope.MINE.label)]
        + ([(Rule.Scope.EVERYONE, Rule.Scope.EVERYONE.label)] if request.user.is_staff else []),
    }
    return render(request, "alerts/rules.html", context)


@login_required
@require_POST
def create(request: HttpRequest) -> HttpResponseRedirect:
    """A rule over every run the user launches, or (staff) every run."""
    scope = request.POST.get("scope", Rule.Scope.MINE)
    if scope == Rule.Scope.EVERYONE and not request.user.is_staff:
        raise PermissionDenied("only staff may make a rule over everyone's runs")
    if scope not in (Rule.Scope.MINE, Rule.Scope.EVERYONE):
        messages.error(request, "The alert was not made: scope: pick your runs or (staff) everyone's")
    else:
        _save(request, scope)
    return redirect("alerts:rules")


@login_required
@require_POST
def subscribe_run(request: HttpRequest, execution_id: int) -> HttpResponseRedirect:
    execution = get_execution_by_id_for_user(request.user, execution_id)
    _save(request, Rule.Scope.RUN, execution=execution)
    return redirect("experiments:execution-by-id", execution.pk)


@login_required
@require_POST
def subscribe_experiment(request: HttpRequest, experiment_id: int) -> HttpResponseRedirect:
    experiment = get_object_or_404(visible_experiments(request.user), pk=experiment_id)
    _save(request, Rule.Scope.EXPERIMENT, experiment=experiment)
    return redirect("experiments:experiment", experiment.name)


@login_required
@require_POST
def subscribe_sweep(request: HttpRequest, sweep_id: int) -> HttpResponseRedirect:
    sweep = get_sweep_for_user(request.user, sweep_id)
    _save(request, Rule.Scope.SWEEP, sweep=sweep)
    return redirect("sweeps:detail", sweep.pk)


@login_required
@require_POST
def delete(request: HttpRequest, rule_id: int) -> HttpResponseRedirect:
    rule = get_rule_for_user(request.user, rule_id)
    said = str(rule)
    remove(request, rule)
    messages.success(request, f"Deleted {said}.")
    return redirect("alerts:rules")


@login_required
@require_POST
def read(request: HttpRequest) -> HttpResponseRedirect:
    """Mark every unread in-app alert of the user read (the bell goes quiet)."""
    unread_for(request.user).update(read_at=timezone.now())
    return redirect("alerts:rules")
