"""The reaper ends each state that waits on something that may never come; one test per state it reaps, on a real
Redis (flushed, as a Redis that restarted without its data) and the test database."""

import datetime as dt

import django_rq
import pytest
from django.utils import timezone
from rq.job import Job

from experiments.jobs import launching
from experiments.jobs.reaper import Every, reap
from experiments.models import Execution, Status
from experiments.models.lifecycle import WORKER_LOST
from sweeps import advance
from sweeps.launching import launch_sweep
from sweeps.models import ABANDONED, Sweep, Trial
from tests.helpers import tiny
from tests.workers import flush

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("real_queues")]

LONG_AGO = timezone.now() - dt.timedelta(hours=1)


def queued_run():
    """A run queued an hour ago, its job in Redis."""
    execution = launching.launch(tiny(), trusted=True, check=lambda config: [])
    Execution.objects.filter(pk=execution.pk).update(created_at=LONG_AGO)
    return Execution.objects.get(pk=execution.pk)


def job_exists(execution):
    return Job.exists(execution.job_id, connection=django_rq.get_connection(execution.queue))


def sweep_waiting(**fields):
    """A running sweep launched an hour ago, whose advance job Redis lost."""
    sweep = launch_sweep({"base": tiny(), "parameters": {"training.epochs": {"choice": [1, 2]}}, "method": "grid"})
    Sweep.objects.filter(pk=sweep.pk).update(created_at=LONG_AGO, **fields)
    flush()
    return Sweep.objects.get(pk=sweep.pk)


def advance_queued(sweep):
    return f"sweep-{sweep.pk}-advance" in django_rq.get_queue(sweep.queue).job_ids


def test_a_queued_run_whose_job_redis_lost_is_queued_again():
    execution = queued_run()
    assert job_exists(execution)
    flush()  # Redis restarted without its data
    assert not job_exists(execution)
    assert reap()["queue again the runs whose job Redis lost"] == 1
    assert job_exists(execution)
    assert Execution.objects.status_of(execution.pk) == Status.QUEUED
    assert reap()["queue again the runs whose job Redis lost"] == 0  # once is enough


def test_a_run_queued_a_moment_ago_waits_for_its_own_job():
    """Its job is enqueued as the transaction that made it commits: the reaper does not race that."""
    execution = launching.launch(tiny(), trusted=True, check=lambda config: [])
    flush()
    assert reap()["queue again the runs whose job Redis lost"] == 0
    assert not job_exists(execution)


def test_a_running_run_whose_heartbeat_stopped_is_failed_as_worker_lost():
    execution = queued_run()
    Execution.objects.claim(execution.pk, "gone-worker")
    Execution.objects.filter(pk=execution.pk).update(heartbeat_at=LONG_AGO)
    assert reap()["check for lost workers"] == 1
    execution.refresh_from_db()
    assert execution.status == Status.FAILED
    assert execution.error == WORKER_LOST


def test_a_trial_reserved_and_never_queued_is_failed_with_why_and_its_sweep_gets_its_advance():
    """A sweep whose Redis restarted stayed running with a trial "starting" forever, even after restarting up."""
    sweep = sweep_waiting(parallel=1)
    reserved = Trial.objects.create(sweep=sweep, number=0, optuna_number=0)
    Trial.objects.filter(pk=reserved.pk).update(created_at=LONG_AGO)
    assert Trial.objects.get(pk=reserved.pk).status == "starting"
    reaped = reap()
    assert reaped["release the sweep trials reserved but never queued"] == 1
    assert reaped["queue again the advance of the sweeps waiting for one"] == 1
    reserved.refresh_from_db()
    assert reserved.status == "failed"
    assert reserved.error == ABANDONED
    assert advance_queued(sweep)


def test_a_trial_reserved_a_moment_ago_is_left_to_the_job_queueing_it():
    sweep = sweep_waiting(parallel=1)
    reserved = Trial.objects.create(sweep=sweep, number=0, optuna_number=0)
    assert reap()["release the sweep trials reserved but never queued"] == 0
    assert Trial.objects.get(pk=reserved.pk).status == "starting"


def test_a_running_sweep_whose_advance_job_redis_lost_gets_it_queued_again():
    sweep = sweep_waiting()
    assert not advance_queued(sweep)
    assert reap()["queue again the advance of the sweeps waiting for one"] == 1
    assert advance_queued(sweep)


def test_a_step_that_fails_is_logged_and_the_others_still_run(settings, caplog):
    queued_run()
    sweep = sweep_waiting(parallel=1)
    reserved = Trial.objects.create(sweep=sweep, number=0, optuna_number=0)
    Trial.objects.filter(pk=reserved.pk).update(created_at=LONG_AGO)
    settings.RQ_QUEUES = {name: {"URL": "redis://127.0.0.1:1/0"} for name in settings.RQ_QUEUES}  # Redis away
    with caplog.at_level("WARNING"):
        reaped = reap()
    assert reaped["queue again the runs whose job Redis lost"] == 0
    assert reaped["release the sweep trials reserved but never queued"] == 1
    assert "Could not queue again the runs whose job Redis lost" in caplog.text


def test_a_loop_reaps_at_most_every_so_often_and_the_first_time_at_once():
    due = Every(3600)
    assert due()
    assert not due()
    assert due.last is not None
    due.last -= 3600
    assert due()


# --- the job that reserved a trial, as the reaper acts ----------------------------------------------------


@pytest.mark.training
def test_a_trial_that_cannot_be_queued_for_redis_being_away_fails_at_once_instead_of_staying_starting(settings):
    sweep = sweep_waiting(parallel=1)
    [trial] = advance.reserve(sweep)
    settings.RQ_QUEUES = {name: {"URL": "redis://127.0.0.1:1/0"} for name in settings.RQ_QUEUES}  # Redis away
    assert advance.start(sweep, trial) == "stop"
    trial.refresh_from_db()
    assert trial.status == "failed"
    assert trial.error.startswith("could not be queued: the job queue is unavailable")
    assert Execution.objects.count() == 0


@pytest.mark.training
def test_a_trial_the_reaper_released_while_it_was_being_queued_makes_no_run():
    sweep = sweep_waiting(parallel=1)
    [trial] = advance.reserve(sweep)
    Trial.objects.filter(pk=trial.pk).update(error=ABANDONED)  # the reaper, while the sample was asked and checked
    assert advance.start(sweep, trial) == "failed"
    trial.refresh_from_db()
    assert trial.execution is None
    assert trial.error == ABANDONED
    assert Execution.objects.count() == 0
    assert django_rq.get_queue(sweep.queue).job_ids == []
