"""The System panels' data: a run's series (polled while it trains) and one metric across compared runs.

A share link opens the same data as its page: the run of an execution link, the runs of a comparison link.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from experiments.access import get_active_share, get_execution_by_id_for_user
from experiments.comparison import load_runs, parse_runs, run_names
from experiments.models import Execution, ShareLink
from experiments.system.reading import FIELD_NAME
from experiments.system.series import compare_payload, page_payload

MAX_OFFSET = 1 << 53


def _offset(request: HttpRequest) -> int | None:
    """``?offset=`` as a byte offset, or None (read the whole file) for anything else."""
    text = request.GET.get("offset", "")
    return int(text) if text.isdigit() and len(text) <= 16 and int(text) < MAX_OFFSET else None


def _metric(request: HttpRequest) -> str | None:
    text = request.GET.get("metric", "")
    return text if FIELD_NAME.match(text) else None


def _comparison(executions: list[Execution], request: HttpRequest) -> JsonResponse:
    return JsonResponse(compare_payload(executions, _metric(request), run_names(executions)))


@login_required
@require_GET
def execution_data(request: HttpRequest, execution_id: int) -> JsonResponse:
    execution = get_execution_by_id_for_user(request.user, execution_id)
    return JsonResponse(page_payload(execution, _offset(request)))


@login_required
@require_GET
def compare_data(request: HttpRequest) -> JsonResponse:
    executions, _ = load_runs(parse_runs(request), request.user)
    return _comparison(executions, request)


@require_GET
def shared_data(request: HttpRequest, token: str) -> JsonResponse:
    link = get_active_share(token)
    if link.kind == ShareLink.Kind.EXECUTION:
        assert link.execution is not None  # an execution link always names its execution
        return JsonResponse(page_payload(link.execution, _offset(request)))
    executions, _ = load_runs(link.runs)
    return _comparison(executions, request)
