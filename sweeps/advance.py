"""Moving a sweep on, on a worker: tell the study how trials ended, ask for the next ones, queue them.

``advance(sweep_id)`` runs whenever one of the sweep's trials ends (``sweeps.signals``), and again
from the safety check; running it twice, or on two workers at once, changes nothing more than
running it once:

1. every trial that ended and that the study has not heard of is told (each claimed by a
   conditional update, so it is told once);
2. free slots are reserved under the sweep's row lock: at most ``parallel`` trials are queued or
   running (or being asked for) at once, and at most ``trials_total`` are ever asked for (the
   unique (sweep, number) constraint says so too);
3. for each slot the study is asked for values, written into the base config, and the config is
   checked and launched as an ordinary execution (``launching.launch``), its network built in the same
   capped child as any launch's. A sample whose config does not validate or build fails that trial with its
   error, and the slot is used again; a network another sample of the sweep already built is not built
   again (``_checker``);
4. when every trial has ended the sweep is finished; importances are refreshed (while it runs: at most
   every ``IMPORTANCE_EVERY``).

The Optuna calls happen outside any Django transaction: on SQLite, Optuna's own connection would
otherwise wait for the lock the transaction holds.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable
from typing import Any

import django_rq
import optuna
import redis
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from experiments import live
from experiments.jobs import launching
from experiments.jobs.queues import QueueUnavailable
from experiments.models import Status
from experiments.pipeline import ConfigError
from experiments.pipeline.build_check import build_problems, network_key
from experiments.pipeline.config import TrainingConfig
from experiments.pipeline.errors import Problem

from . import events, paths, study
from .models import ABANDONED_AFTER, Sweep, Trial

log = logging.getLogger(__name__)

# The live importances are recomputed at most this often (each takes tens of milliseconds of a worker's time
# between two trials, and reads every trial of the study); the sweep's end always recomputes them.
IMPORTANCE_EVERY = dt.timedelta(seconds=10)
# The networks (``network_key``) a sweep's samples built without a problem; kept a week after the last one.
BUILT_NETWORKS = "gymnos:sweep:{sweep}:built-networks"
BUILT_NETWORKS_KEPT = int(dt.timedelta(days=7).total_seconds())
# Configs problems that are about a parameter's key, not its value: every sample would have them.
_KEY_PROBLEMS = ("unknown argument", "unknown key")


def advance(sweep_id: int) -> str:
    """Tell, ask and queue for one sweep; returns what it did, for RQ's job result."""
    sweep = Sweep.objects.filter(pk=sweep_id).first()
    if sweep is None:
        return "no such sweep"
    opened = study.open_study(sweep)  # once for every tell and ask below
    told = tell_ended(sweep, opened)
    queued = failed = 0
    stop = False
    while not stop:
        slots = reserve(sweep)
        for trial in slots:
            outcome = start(sweep, trial, opened)
            queued += outcome == "queued"
            failed += outcome == "failed"
            stop = stop or outcome == "stop"
        stop = stop or not slots
    told += tell_ended(sweep, opened)  # those that ended meanwhile
    ended = finish_if_done(sweep)
    if ended or (told and due_for_importance(sweep)):
        refresh_importance(sweep, opened)
    return f"told {told}, queued {queued}, failed samples {failed}" + (", finished" if ended else "")


def tell_ended(sweep: Sweep, opened: optuna.Study | None = None) -> int:
    """Tell the study about every trial of ``sweep`` that ended; each is told once. Returns how many."""
    sweep.trials.release_abandoned()  # told below, as failed
    count = 0
    for trial in sweep.trials.untold().select_related("execution"):
        if not Trial.objects.filter(pk=trial.pk, told_at__isnull=True).update(told_at=timezone.now()):
            continue  # another worker tells this one
        outcome, value, error = _outcome(sweep, trial)
        if trial.optuna_number is not None:
            study.tell(sweep, trial.optuna_number, outcome, value, opened)
        # The outcome is written once the study knows it: a sweep finishes only when every trial has one.
        Trial.objects.filter(pk=trial.pk).update(outcome=outcome, value=value, error=error or F("error"))
        best = value is not None and trial.execution_id is not None and _beats_the_others(sweep, trial, value)
        if best and value is not None:
            _announce_best(sweep, trial, value)
        _publish_trial(sweep, trial, status=outcome, value=value, best=best)
        count += 1
    return count


def _publish_trial(sweep: Sweep, trial: Trial, **fields: Any) -> None:
    """A ``trial`` live event (``experiments.live``), once what it says is committed: the sweep page listens."""
    facts = {"run": trial.execution_id, "number": trial.number, **fields}
    transaction.on_commit(lambda: live.publish_sweep(sweep.pk, live.TRIAL, **facts))


def _beats_the_others(sweep: Sweep, trial: Trial, value: float) -> bool:
    """Whether ``value`` is better than every other told trial's objective (a tie is no new best)."""
    at_least_as_good = {"value__gte" if sweep.direction == "maximize" else "value__lte": value}
    return not sweep.trials.exclude(pk=trial.pk).filter(value__isnull=False, **at_least_as_good).exists()


def _announce_best(sweep: Sweep, trial: Trial, value: float) -> None:
    facts = {"sweep": sweep.pk, "execution": trial.execution_id, "number": trial.number, "metric": sweep.metric}
    transaction.on_commit(lambda: events.new_best_trial.send(sender=Sweep, value=value, **facts))


def _outcome(sweep: Sweep, trial: Trial) -> tuple[str, float | None, str]:
    """How a trial ended for the study: its status, its objective, and why it has none (if so)."""
    execution = trial.execution
    if execution is None:
        return Status.FAILED, None, ""
    status = execution.status if execution.status in (Status.SUCCEEDED, Status.PRUNED) else Status.FAILED
    if execution.status == Status.CANCELLED:
        status = Status.CANCELLED
    if status not in (Status.SUCCEEDED, Status.PRUNED):
        return status, None, ""
    values = [value for value in execution.history(sweep.metric) if value is not None and math.isfinite(value)]
    if not values:
        logged = ", ".join(sorted(execution.summary)) or "nothing"
        return Status.FAILED, None, f"objective: the run logged no finite {sweep.metric} (it logged: {logged})"
    pick = max if sweep.direction == "maximize" else min
    return status, (pick(values) if sweep.which == "best" else values[-1]), ""


def reserve(sweep: Sweep) -> list[Trial]:
    """Reserve the free slots of a running sweep (row-locked), as trials not asked for yet."""
    with transaction.atomic():
        locked = Sweep.objects.select_for_update().filter(pk=sweep.pk, status=Sweep.State.RUNNING).first()
        if locked is None:
            return []
        total = locked.trials.count()
        free = min(locked.parallel - locked.trials.live().count(), locked.trials_total - total)
        return [Trial.objects.create(sweep=locked, number=total + index) for index in range(max(free, 0))]


def start(sweep: Sweep, trial: Trial, opened: optuna.Study | None = None) -> str:
    """Ask the study for ``trial``'s values and queue its run: ``queued``, ``failed`` (a bad sample) or ``stop``."""
    number, params = study.ask(sweep, trial.number, opened)
    Trial.objects.filter(pk=trial.pk).update(optuna_number=number, params=params)
    config = sweep.base_config
    for path, value in params.items():
        config = paths.write(config, path, value)
    try:
        with transaction.atomic():
            execution = launching.launch(
                config, user=sweep.created_by, trusted=sweep.trusted, check=_checker(sweep), project=sweep.project
            )  # its project's folder (none named: default, as before sweeps named one)
            if not Trial.objects.filter(pk=trial.pk, error="").update(execution=execution):
                raise _Released()  # the run is not made: the transaction rolls back, its job is never queued
    except _Released:
        log.warning("Trial %s of %s was released as abandoned while it was being queued", trial.number, sweep)
        return "failed"
    except ConfigError as exc:
        key_problems = [p for p in exc.problems if p.path in params and p.message.startswith(_KEY_PROBLEMS)]
        _fail_sample(sweep, trial, number, "\n".join(str(problem) for problem in exc.problems), opened)
        if key_problems:  # the same for every value: the sweep cannot go on
            problem = key_problems[0]
            Sweep.objects.fail(sweep.pk, f'parameters["{problem.path}"]: {problem.message}')
            return "stop"
        return "failed"
    except QueueUnavailable as exc:
        # Redis was away: a run made and not queued failed (told like any other's end); a reservation that never
        # became a run fails now rather than stay "starting" until the reaper releases it.
        Trial.objects.filter(pk=trial.pk, execution__isnull=True, error="").update(error=f"could not be queued: {exc}")
        log.warning("Could not queue a trial of %s: %s", sweep, exc)
        return "stop"
    if not Sweep.objects.filter(pk=sweep.pk, status=Sweep.State.RUNNING).exists():
        launching.cancel(execution)  # cancelled while this trial was being queued
    trial.execution_id = execution.pk
    _publish_trial(sweep, trial, status="queued")
    return "queued"


class _Released(Exception):
    """The reaper failed a trial as abandoned while its run was being made (``start``)."""


def _checker(sweep: Sweep) -> Callable[[TrainingConfig], list[Problem]]:
    """The build check of a sample: the launch's own (a child capped at GYMNOS_CHECK_MEMORY_MB and
    GYMNOS_CHECK_SECONDS, ``launching.isolated_problems``), which builds the network, the part whose cost a
    config chooses. Each network that built there is remembered (in Redis, per sweep): a later sample with the
    same network is checked here instead, without building it (``network_built``), since what is left
    (optimizer, loss, metrics, transformers, callbacks) costs the same whatever the config says, and a child's
    start (its TensorFlow runtime: 0.5-0.8 s) is most of the time between two trials. Without Redis every
    sample goes to the child."""
    key = BUILT_NETWORKS.format(sweep=sweep.pk)

    def check(config: TrainingConfig) -> list[Problem]:
        signature = network_key(config)
        connection = django_rq.get_connection(sweep.queue)
        try:
            built = bool(connection.sismember(key, signature))
        except redis.RedisError:
            built = False
        if built:
            return build_problems(config, network_built=True)
        problems = launching.isolated_problems(config)
        if not problems:
            try:
                pipeline = connection.pipeline()
                pipeline.sadd(key, signature)
                pipeline.expire(key, BUILT_NETWORKS_KEPT)
                pipeline.execute()
            except redis.RedisError:
                pass
        return problems

    return check


def _fail_sample(sweep: Sweep, trial: Trial, number: int, error: str, opened: optuna.Study | None) -> None:
    study.tell(sweep, number, Status.FAILED, None, opened)
    Trial.objects.filter(pk=trial.pk).update(error=error, outcome=Status.FAILED, told_at=timezone.now())


def finish_if_done(sweep: Sweep) -> bool:
    """running -> finished once every trial was asked for and has ended and been told.

    A trial another worker is telling (claimed, its outcome not written yet) holds the finish back:
    that worker finishes the sweep after it told the study, so the study knows every trial by then.
    One whose teller died (claimed longer than ``models.ABANDONED_AFTER`` ago) holds it back no more.
    """
    trials = sweep.trials
    telling = trials.filter(outcome="", told_at__gt=timezone.now() - ABANDONED_AFTER)
    if trials.count() < sweep.trials_total or trials.filter(told_at__isnull=True).exists() or telling.exists():
        return False
    if not Sweep.objects.finish(sweep.pk):
        return False
    transaction.on_commit(lambda: events.sweep_finished.send(sender=Sweep, sweep=sweep.pk))
    return True


def due_for_importance(sweep: Sweep) -> bool:
    """Whether this worker refreshes the importances now: at most once per ``IMPORTANCE_EVERY`` for a sweep
    (claimed by a conditional update, so two workers ending trials together compute it once), and not
    before two trials have a value. The sweep's end always refreshes them."""
    if sweep.trials.filter(outcome=Status.SUCCEEDED, value__isnull=False).count() < 2:
        return False
    now = timezone.now()
    stale = Q(importance_at__isnull=True) | Q(importance_at__lt=now - IMPORTANCE_EVERY)
    return bool(Sweep.objects.filter(stale, pk=sweep.pk).update(importance_at=now))


def refresh_importance(sweep: Sweep, opened: optuna.Study | None = None) -> None:
    """Optuna's importance of each parameter, stored on the sweep for its page (tens of milliseconds)."""
    found = study.importance(sweep, opened)
    if found:
        Sweep.objects.filter(pk=sweep.pk).update(importance=found)
