"""Real workers (``manage.py rqworker``) on a real Redis and the test database run the pipeline."""

import datetime as dt
import os
import signal
from typing import Any

import django_rq
import pytest
from django.test import Client

from experiments.jobs import launching
from experiments.models import Execution
from tests.helpers import tiny
from tests.workers import WorkerProcess, flush, queues_at, wait_for, worker_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.training, pytest.mark.postgres]


def slow(epochs):
    """A tiny config whose epochs pause (GYMNOS_TEST_EPOCH_PAUSE seconds), so a test can act while it trains."""
    return tiny(epochs=epochs, callbacks=[{"type": "lambda_callback", "on_epoch_end": "tests.hooks.pause"}])


@pytest.fixture
def stack(settings, tmp_path, monkeypatch):
    """Start workers on demand: ``stack.worker()``; all are stopped at the end."""
    monkeypatch.setenv("GYMNOS_CALLBACK_MODULES", "tests.hooks")  # validation in this process too
    settings.RQ_QUEUES = queues_at()
    settings.GYMNOS_TRAININGS_ROOT = tmp_path / "trainings"
    flush()

    class Stack:
        workers: list[Any] = []

        def worker(self, **env):
            process = WorkerProcess(
                worker_env(tmp_path / "trainings", tmp_path / "cache", **env),
                tmp_path / f"worker-{len(self.workers)}.log",
            )
            self.workers.append(process)
            return process

    stack = Stack()
    yield stack
    for process in stack.workers:
        process.stop()
    flush()


def status_of(pk):
    return Execution.objects.get(pk=pk).status


def test_a_launched_run_trains_and_its_folder_is_indexed(stack):
    stack.worker().wait_ready()
    execution = launching.launch(tiny(epochs=3))
    wait_for(lambda: status_of(execution.pk) in {"succeeded", "failed"}, timeout=90, message="run finished")
    execution.refresh_from_db()
    assert execution.status == "succeeded", execution.error
    assert execution.epochs == 3
    assert execution.epochs_total == 3
    assert execution.worker.startswith("test-")
    assert os.path.isfile(os.path.join(execution.folder_path, "model.h5"))
    assert len(execution.history("loss")) == 3
    assert execution.test_loss is not None
    assert execution.elapsed["fit_model"] > 0  # synced from metrics.json


def test_epoch_metrics_are_visible_while_the_run_trains(stack):
    stack.worker(GYMNOS_TEST_EPOCH_PAUSE="0.5").wait_ready()
    execution = launching.launch(slow(epochs=8))
    client = Client()
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_user("watcher"))

    def mid_run():
        body = client.get(f"/api/executions/{execution.pk}").json()
        return body if body["status"] == "running" and body["epochs"] >= 2 else None

    body = wait_for(mid_run, timeout=90, message="two epochs visible while running")
    assert body["epochs_total"] == 8
    assert "loss" in body["summary"]
    metrics = client.get(f"/api/executions/{execution.pk}/metrics").json()["metrics"]
    assert len(metrics["loss"]) >= 2
    assert len(metrics["val_loss"]) >= 2
    wait_for(lambda: status_of(execution.pk) == "succeeded", timeout=90, message="run finished")


def test_cancelling_a_running_run_stops_it_and_keeps_its_partial_folder(stack):
    stack.worker(GYMNOS_TEST_EPOCH_PAUSE="0.5").wait_ready()
    execution = launching.launch(slow(epochs=40))
    wait_for(lambda: Execution.objects.get(pk=execution.pk).epochs >= 2, timeout=90, message="two epochs done")
    assert launching.cancel(Execution.objects.get(pk=execution.pk))
    execution.refresh_from_db()
    assert execution.status == "cancelled"
    folder = execution.folder_path
    # The work horse is gone: no more epochs, and no model saved.
    epochs = wait_for(lambda: _steady_epochs(execution.pk), timeout=30, message="training stopped")
    assert epochs < 40
    assert not os.path.exists(os.path.join(folder, "model.h5"))
    assert os.path.isfile(os.path.join(folder, "execution.log"))
    wait_for(
        lambda: Execution.objects.get(pk=execution.pk).synced_at is not None,
        timeout=30,
        message="partial folder synced",
    )
    assert status_of(execution.pk) == "cancelled"


def test_a_run_whose_work_horse_is_killed_fails_at_once_saying_how_it_died(stack):
    worker = stack.worker(GYMNOS_TEST_EPOCH_PAUSE="0.5").wait_ready()
    execution = launching.launch(slow(epochs=40))
    wait_for(lambda: Execution.objects.get(pk=execution.pk).epochs >= 1, timeout=90, message="an epoch done")
    horse = worker.horse()
    horse.kill()  # as the kernel's out-of-memory killer, or a person, would
    # Failed by the worker that saw it die, well before a stale heartbeat (30 s) would say "worker lost".
    wait_for(lambda: status_of(execution.pk) == "failed", timeout=10, message="the run failed")
    execution.refresh_from_db()
    # Said as what it was: no process was killed for memory on this machine meanwhile (unless one was).
    assert execution.error.startswith("its work horse died (signal 9 (SIGKILL)): ")
    assert "a kill from outside" in execution.error or "most likely the kernel's out-of-memory" in execution.error
    assert os.path.isfile(os.path.join(execution.folder_path, "execution.log"))
    after = launching.launch(tiny(epochs=1))
    wait_for(lambda: status_of(after.pk) == "succeeded", timeout=90, message="the worker's next run")


def _steady_epochs(pk, wait=2.0):
    import time

    before = Execution.objects.get(pk=pk).epochs
    time.sleep(wait)
    after = Execution.objects.get(pk=pk).epochs
    return after if after == before else None


def test_a_job_delivered_twice_runs_once(stack):
    execution = launching.launch(tiny(epochs=1))
    # The same execution enqueued again under another job id, as a redelivery would.
    django_rq.get_queue("default").enqueue_call(
        "experiments.jobs.tasks.run_execution", args=(execution.pk,), job_id="duplicate"
    )
    stack.worker().wait_ready()
    wait_for(lambda: status_of(execution.pk) == "succeeded", timeout=90, message="run finished")
    duplicate = wait_for(lambda: _finished_job("duplicate"), timeout=30, message="duplicate job done")
    assert duplicate.return_value().startswith("skipped")
    folders = os.listdir(os.path.dirname(Execution.objects.get(pk=execution.pk).folder_path))
    assert len(folders) == 1


def _finished_job(job_id):
    from rq.job import Job

    job = Job.fetch(job_id, connection=django_rq.get_connection("default"))
    return job if job.is_finished else None


def test_a_killed_worker_fails_its_run_as_worker_lost_and_the_queue_goes_on(stack):
    doomed = stack.worker(GYMNOS_TEST_EPOCH_PAUSE="0.5").wait_ready()
    first = launching.launch(slow(epochs=40))
    wait_for(lambda: Execution.objects.get(pk=first.pk).epochs >= 1, timeout=90, message="first run training")
    second = launching.launch(tiny(epochs=1))
    os.kill(doomed.process.pid, signal.SIGKILL)
    stack.worker().wait_ready()
    wait_for(lambda: status_of(first.pk) == "failed", timeout=60, message="first run marked failed")
    assert Execution.objects.get(pk=first.pk).error.startswith("worker lost")
    wait_for(lambda: status_of(second.pk) == "succeeded", timeout=90, message="next queued run finished")


def test_two_workers_drain_one_queue_each_job_once(stack):
    executions = [launching.launch(tiny(epochs=1)) for _ in range(4)]
    first, second = stack.worker(), stack.worker()
    first.wait_ready(), second.wait_ready()
    wait_for(lambda: all(status_of(e.pk) == "succeeded" for e in executions), timeout=180, message="all runs finished")
    rows = Execution.objects.filter(pk__in=[e.pk for e in executions])
    assert len({row.folder_path for row in rows}) == 4
    folders = [name for row in rows for name in os.listdir(os.path.dirname(row.folder_path))]
    assert len(set(folders)) == 4  # one folder per run: none ran twice
    assert {row.worker for row in rows} <= {first.name, second.name}


def test_launches_one_after_another_get_consecutive_ids_and_a_sync_during_the_runs_adds_no_row(stack, settings):
    from experiments.index.sync import sync_trainings

    stack.worker(GYMNOS_TEST_EPOCH_PAUSE="0.3").wait_ready()
    settings.GYMNOS_TRAININGS_ROOT.mkdir(parents=True)
    launched = [launching.launch(slow(epochs=3)).pk for _ in range(3)]
    assert launched == list(range(launched[0], launched[0] + 3))

    def all_ended():
        sync_trainings()  # a sync racing the worker for each brand-new folder
        return all(status_of(pk) in {"succeeded", "failed"} for pk in launched)

    wait_for(all_ended, timeout=120, interval=0.05, message="three runs ended")
    assert [status_of(pk) for pk in launched] == ["succeeded"] * 3
    assert sorted(Execution.objects.values_list("pk", flat=True)) == launched  # no row added, none deleted
    assert launching.launch(tiny()).pk == launched[-1] + 1
    sync_trainings()
    assert [status_of(pk) for pk in launched] == ["succeeded"] * 3


def test_sync_leaves_a_running_runs_status_to_its_worker_however_still_its_folder(stack, settings):
    from experiments.index.sync import sync_trainings

    stack.worker(GYMNOS_TEST_EPOCH_PAUSE="1.0").wait_ready()
    execution = launching.launch(slow(epochs=4))
    wait_for(lambda: Execution.objects.get(pk=execution.pk).folder_name, timeout=90, message="folder claimed")
    sync_trainings(stale_after=dt.timedelta(0))  # every folder without metrics.json counts as crashed
    assert status_of(execution.pk) == "running"
    wait_for(lambda: status_of(execution.pk) == "succeeded", timeout=90, message="run ended")
