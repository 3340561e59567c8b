"""The JSON the Evaluation panels draw: one run's report, the compared runs' matrices or plots, and both
under a share link (which shows its own run or comparison and nothing more)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from experiments.access import get_active_share, get_execution_by_id_for_user
from experiments.comparison import load_runs, parse_runs
from experiments.models import ShareLink

from . import report


@login_required
@require_GET
def execution_data(request: HttpRequest, execution_id: int) -> JsonResponse:
    return JsonResponse(report.panel(get_execution_by_id_for_user(request.user, execution_id)))


@login_required
@require_GET
def compare_data(request: HttpRequest) -> JsonResponse:
    executions, _ = load_runs(parse_runs(request), request.user)
    return JsonResponse(report.comparison(executions))


@require_GET
def shared_data(request: HttpRequest, token: str) -> JsonResponse:
    """A run's link: that run's report; a comparison's link: its runs' matrices or plots."""
    link = get_active_share(token)
    if link.kind == ShareLink.Kind.EXECUTION:
        assert link.execution is not None  # an execution link always names its execution
        return JsonResponse(report.panel(link.execution))
    executions, _ = load_runs(link.runs)
    return JsonResponse(report.comparison(executions))
