"""The queue: runs waiting (in order, with who launched them), runs in progress with their
worker, and each RQ worker's state and machine (CPU, memory, GPUs, from its heartbeat). The page
re-renders its fragment every few seconds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import django_rq
import redis
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET
from rq import Worker

from experiments import live
from experiments.access import visible_executions
from experiments.display import eta_seconds, execution_url, progress_percent, run_label
from experiments.jobs.queues import QUEUES, QueueUnavailable, check_redis
from experiments.models import Execution
from experiments.system import machines

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

REFRESH_SECONDS = 3


def _workers() -> tuple[list[dict[str, Any]], str | None]:
    """``(workers, problem)``: each worker's state from Redis, or why Redis could not be read."""

    workers: list[dict[str, Any]] = []
    seen: set[str] = set()
    try:
        for name in QUEUES:
            connection = django_rq.get_connection(name)
            check_redis(connection)
            for worker in Worker.all(connection=connection):
                if worker.name in seen:
                    continue
                seen.add(worker.name)
                workers.append(
                    {
                        "name": worker.name,
                        "hostname": worker.hostname,
                        "pid": worker.pid,
                        "state": worker.get_state(),
                        "queues": worker.queue_names(),
                        "job_id": worker.get_current_job_id(),
                        "last_heartbeat": worker.last_heartbeat,
                        "birth": worker.birth_date,
                        "machine": machines.read(connection.hget(worker.key, machines.FIELD)),
                    }
                )
    except QueueUnavailable as exc:
        return [], str(exc)
    except (redis.exceptions.RedisError, OSError) as exc:
        return [], f"the job queue could not be read: {exc}"
    return sorted(workers, key=lambda worker: worker["name"]), None


def queue_context(user: User | AnonymousUser) -> dict[str, Any]:
    """The user's projects' waiting and training runs, and every worker: one busy with a run of a project the
    user may not see says so, and nothing of which run."""
    Execution.objects.mark_lost()
    active = (
        visible_executions(user)
        .filter(status__in=[Execution.Status.QUEUED, Execution.Status.RUNNING])
        .defer("config", "artifacts", "summary", "hardware", "trackers", "error")
        .order_by("created_at", "pk")
    )
    waiting: list[dict[str, Any]] = []
    in_progress: list[dict[str, Any]] = []
    for execution in active:
        row = {"execution": execution, "url": execution_url(execution), "label": run_label(execution)}
        if execution.status == Execution.Status.QUEUED:
            waiting.append(row)
        else:
            row.update(progress=progress_percent(execution), eta=eta_seconds(execution))
            in_progress.append(row)
    workers, problem = _workers()
    by_job = {row["execution"].job_id: row for row in in_progress if row["execution"].job_id}
    for worker in workers:
        worker["execution"] = by_job.get(worker["job_id"])
        if worker["execution"] is None and worker["job_id"]:
            worker["job_id"], worker["elsewhere"] = "", True
    return {
        "waiting": waiting,
        "in_progress": in_progress,
        "workers": workers,
        "problem": problem,
        "now": timezone.now(),
        "queues": QUEUES,
        "refresh": REFRESH_SECONDS,
    }


@login_required
@require_GET
def page(request: HttpRequest) -> HttpResponse:
    listen = live.streams_served(request)
    return render(request, "experiments/queue.html", {**queue_context(request.user), "listen": listen})


@login_required
@require_GET
def fragment(request: HttpRequest) -> HttpResponse:
    return render(request, "experiments/_partials/queue.html", queue_context(request.user))
