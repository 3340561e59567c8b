"""``GET /sweeps/<id>/events``: the sweep page's one stream (server-sent events, an async view under ASGI; routed in
``experiments.urls``, beside the other streams).

It sends ``run`` events (``{"run", "kind", "status", "epoch"}``) for the status changes and epochs of the sweep's
trials, ``trial`` events (``{"run", "number", "status", "value", "best"}``: a trial queued, or ended and told to
the study; ``best``: a new best) and, when the sweep ends, ``sweep`` (``{"status"}``) then ``end``. The page reads
its summary again on them; a new trial shows up from its ``trial`` event. Who may see the sweep may follow it
(checked when the stream opens); a shared sweep page polls. Under a WSGI server, or with Redis away: 503, and the
page polls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_GET

from experiments import live
from experiments.views.events import EventStream, Runs, _closing_connection, _event, _refused, runs_stream
from sweeps.models import Trial
from sweeps.scope import get_sweep_for_user


class Trials(Runs):
    """A sweep's trials: its runs' events, and its own channel's (new trials, ends, new bests, the sweep's end)."""

    def __init__(self, user: Any, sweep: int) -> None:
        super().__init__(user)
        self.sweep = sweep
        self.channels = [live.RUNS_CHANNEL, live.sweep_channel(sweep)]

    def admits(self, run: Any) -> bool:
        # Whoever may see the sweep sees its trials (its page lists them all).
        return isinstance(run, int) and Trial.objects.filter(sweep_id=self.sweep, execution_id=run).exists()

    def other(self, event: dict[str, Any], seen: dict[Any, bool]) -> tuple[list[bytes], bool]:
        kind = event.pop("kind", None)
        event.pop("sweep", None)
        if kind == live.TRIAL:
            if isinstance(event.get("run"), int):
                seen[event["run"]] = True  # a new trial's run: its events go out from now on
            return [_event("trial", event)], False
        if kind == live.SWEEP:
            return [_event("sweep", event)], True
        return [], False


@login_required
@require_GET
async def sweep_events(request: HttpRequest, sweep_id: int) -> HttpResponseBase:
    user = await request.auser()
    sweep = await _closing_connection(get_sweep_for_user)(user, sweep_id)
    if not sweep.is_running and _refused(request) is None:  # it ended while the page was opening
        return EventStream(_ended(sweep.status))
    return await runs_stream(request, Trials(user, sweep.pk))


async def _ended(status: str) -> AsyncIterator[bytes]:
    yield _event("sweep", {"status": status})
    yield _event("end", {})
