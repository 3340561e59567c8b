"""The reaper: it ends every state that waits on something that may never come (docs/security.md, "Nothing stuck").

Each worker runs it every ``REAP_SECONDS`` from its heartbeat (``experiments.jobs.worker``: idle or while its horse
trains, the first time as it is first idle), and so does ``up``'s supervisor. Every step is a conditional update
or an idempotent enqueue, so any number of processes may reap at once. What it reaps, and into what:

1. a **running run whose heartbeat stopped** ``LOST_AFTER`` (30 s) ago, its worker or machine gone: queued again
   to resume from its kept state, or failed "worker lost" (``resuming.reap_lost``; a horse whose worker died
   says so itself, at once);
2. a **queued run whose job Redis no longer has** (Redis restarted without its data, or was flushed), queued
   ``launching.SETTLE`` (10 s) ago or more: its job is queued again (``launching.requeue_orphans``);
3. what the features register in ``experiments.extensions.REAPERS``; sweeps (``sweeps.launching``):

   a. a **trial reserved but never queued** for ``ABANDONED_AFTER`` (5 min: the job asking for it died, or Redis
      went away as it was queued): failed with that reason, so the study is told and its slot is free;
   b. a **running sweep waiting for an advance nobody does** (its advance job lost with Redis, a trial's end
      told nowhere): its advance job is queued again (``heal``);

   and alerts (``alerts.firing``):

   c. a **running run with no epoch for as long as a stalled rule waits**: that rule fires (once per stall);
   d. an **alert delivery whose wait before its next attempt is over** (RQ keeps it in the scheduled registry,
      which workers without RQ's scheduler never empty): queued again;
   e. an **alert delivery whose job Redis lost**, 10 min old: queued again if it was pending, failed ("its worker
      stopped while sending it") if it was being sent;

4. a **push begun and never finished** (``/api/push``), nothing written to it for ``GYMNOS_PUSH_STAGING_HOURS``:
   its staging folder and list removed (``experiments.index.staging``, through ``fileops``).

A step that fails (the database or Redis away) is logged and the others still run; the next reap tries again.
Database steps follow the connection rule of ``experiments.jobs.database``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis

from experiments.extensions import REAPERS
from experiments.index import staging
from experiments.jobs import database, launching, resuming

log = logging.getLogger(__name__)

REAP_SECONDS = 10

# (what it does, the step: returns how many it reaped), the core's own first.
CORE: list[tuple[str, Callable[[], int]]] = [
    ("check for lost workers", resuming.reap_lost),
    ("queue again the runs whose job Redis lost", launching.requeue_orphans),
    ("remove abandoned pushes' staging", staging.reap_abandoned),
]


def reap() -> dict[str, int]:
    """Run each step once; returns how many each reaped (0 for one that failed, which is logged)."""
    reaped: dict[str, int] = {}
    for what, function in [*CORE, *REAPERS]:
        try:
            count = database.step(what, function) or 0
        except (redis.RedisError, OSError) as exc:  # Redis away: said in a line, every turn until it is back
            log.warning("Could not %s (Redis said: %s); trying again later", what, exc)
            count = 0
        except Exception:  # logged: one step's failure must stop neither the others nor the loop
            log.exception("Could not %s; trying again later", what)
            count = 0
        if count:
            log.warning("Reaper: %s: %s", what, count)
        reaped[what] = count
    return reaped


class Every:
    """Says when a loop that wakes up often should reap: at most every ``seconds``, the first time at once.

    ::

        due = Every(REAP_SECONDS)
        while running:
            if due():
                reap()
    """

    def __init__(self, seconds: float = REAP_SECONDS) -> None:
        self.seconds = seconds
        self.last: float | None = None

    def __call__(self) -> bool:
        now = time.monotonic()
        if self.last is not None and now - self.last < self.seconds:
            return False
        self.last = now
        return True
