"""Alerts on real runs: two tiny Keras trainings, one that diverges, trained by a real ``rqworker`` process, fire
their owner's threshold, NaN and end rules once each to a webhook receiver on 127.0.0.1 (sent by that worker); a
worker killed mid-run fires worker_lost once; a sweep's trials fire new_best, and its end sweep_finished, once."""

import os
import signal

import pytest
from django.contrib.auth.models import User

from alerts.models import Delivery, Rule
from experiments.jobs import launching
from experiments.models import Execution
from sweeps import study
from sweeps.launching import launch_sweep
from sweeps.models import Trial
from tests.alert_receivers import Webhook
from tests.helpers import tiny
from tests.workers import WorkerProcess, flush, queues_at, wait_for, worker_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.training]


def diverging(epochs):
    """Unscaled Boston Housing with SGD at a learning rate of a million: the loss overflows in epoch 1."""
    config = tiny(epochs=epochs)
    config["dataset"]["transformers"] = []
    config["model"]["compilation"]["optimizer"] = {"type": "sgd", "learning_rate": 1e6}
    return config


def test_real_runs_fire_each_of_their_rules_once(settings, tmp_path, monkeypatch):
    hook = Webhook()
    monkeypatch.setenv("GYMNOS_WEBHOOK_HOSTS", f"127.0.0.1:{hook.port}")
    settings.RQ_QUEUES = queues_at()
    settings.GYMNOS_TRAININGS_ROOT = tmp_path / "trainings"
    flush()
    ada = User.objects.create_user("ada", password="pw-ada-123")
    watching = {"scope": Rule.Scope.MINE, "channel": Rule.Channel.WEBHOOK, "webhook_url": hook.url, "owner": ada}
    Rule.objects.create(kind=Rule.Kind.NAN, **watching)
    Rule.objects.create(kind=Rule.Kind.THRESHOLD, metric="val_loss", operator=">", threshold=0, **watching)
    Rule.objects.create(kind=Rule.Kind.FINISHED, **watching)
    Rule.objects.create(kind=Rule.Kind.FAILED, **watching)  # it does not fail: Keras trains on through NaN

    good = launching.launch(tiny(epochs=2), user=ada)
    bad = launching.launch(diverging(epochs=2), user=ada)
    worker = WorkerProcess(
        worker_env(tmp_path / "trainings", tmp_path / "cache", GYMNOS_WEBHOOK_HOSTS=f"127.0.0.1:{hook.port}"),
        tmp_path / "worker.log",
    )
    try:
        wait_for(lambda: len(hook.received) >= 4, timeout=150, message="four alerts")
        assert set(Execution.objects.filter(pk__in=[good.pk, bad.pk]).values_list("status", flat=True)) == {"succeeded"}
        # The good run crossed its threshold (a NaN crosses nothing) and finished; the bad one logged NaN and finished.
        sent = sorted((post["json"]["run"]["id"], post["json"]["alert"]["event"]) for post in hook.received)
        assert sent == [(good.pk, "finished"), (good.pk, "threshold"), (bad.pk, "finished"), (bad.pk, "nan")]
        assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    finally:
        worker.stop()
        hook.close()
        flush()


def test_a_worker_killed_mid_run_fires_worker_lost_once(settings, tmp_path, monkeypatch):
    hook = Webhook()
    monkeypatch.setenv("GYMNOS_WEBHOOK_HOSTS", f"127.0.0.1:{hook.port}")
    monkeypatch.setenv("GYMNOS_CALLBACK_MODULES", "tests.hooks")
    settings.RQ_QUEUES = queues_at()
    settings.GYMNOS_TRAININGS_ROOT = tmp_path / "trainings"
    flush()
    ada = User.objects.create_user("ada", password="pw-ada-123")
    watching = {"scope": Rule.Scope.MINE, "channel": Rule.Channel.WEBHOOK, "webhook_url": hook.url, "owner": ada}
    Rule.objects.create(kind=Rule.Kind.WORKER_LOST, **watching)
    env = worker_env(tmp_path / "trainings", tmp_path / "cache", GYMNOS_WEBHOOK_HOSTS=f"127.0.0.1:{hook.port}")
    doomed = WorkerProcess({**env, "GYMNOS_TEST_EPOCH_PAUSE": "0.5"}, tmp_path / "doomed.log")
    sender = None
    try:
        doomed.wait_ready()
        paused = tiny(epochs=40, callbacks=[{"type": "lambda_callback", "on_epoch_end": "tests.hooks.pause"}])
        run = launching.launch(paused, user=ada)
        wait_for(lambda: Execution.objects.get(pk=run.pk).epochs >= 1, timeout=120, message="the run training")
        os.kill(doomed.process.pid, signal.SIGKILL)  # the worker gone, as with its machine
        sender = WorkerProcess(env, tmp_path / "sender.log")  # sends the alert its horse queued as it saw that
        wait_for(lambda: len(hook.received) >= 1, timeout=120, message="the worker_lost alert")
        (post,) = hook.received
        assert (post["json"]["run"]["id"], post["json"]["alert"]["event"]) == (run.pk, "worker_lost@1")
        assert "worker lost" in post["json"]["message"]
        assert Execution.objects.get(pk=run.pk).status == "failed"
        wait_for(lambda: Delivery.objects.get().status == "sent", timeout=30, message="marked sent")
    finally:
        doomed.stop()
        if sender is not None:
            sender.stop()
        hook.close()
        flush()


def test_a_sweep_on_a_real_worker_fires_new_best_per_better_trial_and_finished_once(settings, tmp_path, monkeypatch):
    hook = Webhook()
    monkeypatch.setenv("GYMNOS_WEBHOOK_HOSTS", f"127.0.0.1:{hook.port}")
    settings.RQ_QUEUES = queues_at()
    settings.GYMNOS_TRAININGS_ROOT = tmp_path / "trainings"
    flush()
    ada = User.objects.create_user("ada", password="pw-ada-123")
    sweep = launch_sweep(
        {
            "name": "alerted",
            "base": tiny(epochs=2),
            "parameters": {"model.compilation.optimizer.learning_rate": {"choice": [0.001, 0.01, 0.1]}},
            "method": "grid",
        },
        user=ada,
    )
    watching = {"scope": Rule.Scope.SWEEP, "sweep": sweep, "channel": Rule.Channel.WEBHOOK, "webhook_url": hook.url}
    Rule.objects.create(owner=ada, kind=Rule.Kind.NEW_BEST, **watching)
    Rule.objects.create(owner=ada, kind=Rule.Kind.SWEEP_FINISHED, **watching)
    worker = WorkerProcess(
        worker_env(tmp_path / "trainings", tmp_path / "cache", GYMNOS_WEBHOOK_HOSTS=f"127.0.0.1:{hook.port}"),
        tmp_path / "worker.log",
    )
    try:
        wait_for(
            lambda: any(post["json"]["alert"]["event"] == "sweep_finished" for post in hook.received),
            timeout=300,
            message="the sweep_finished alert",
        )
        sweep.refresh_from_db()
        assert sweep.status == "finished"
        trials = list(Trial.objects.filter(sweep=sweep).order_by("number"))
        scores = {trial.execution_id: trial.value for trial in trials if trial.value is not None}
        assert len(scores) == 3
        # Every alert sent before they are read: the worker runs alert jobs front first, so the sweep_finished one
        # (queued last) can arrive before the new_best queued just before it.
        wait_for(
            lambda: set(Delivery.objects.values_list("status", flat=True)) == {"sent"}, timeout=30, message="all sent"
        )
        values = list(scores.values())
        # A trial is told as it ends, in order here (one worker): each that beat every earlier one was a new best.
        better = [pk for index, (pk, value) in enumerate(scores.items()) if all(value < v for v in values[:index])]
        best = min(scores, key=lambda pk: scores[pk])
        events = [(post["json"]["run"]["id"], post["json"]["alert"]["event"]) for post in hook.received]
        assert sorted(events) == sorted([(pk, "new_best") for pk in better] + [(best, "sweep_finished")])
        (finished,) = [post for post in hook.received if post["json"]["alert"]["event"] == "sweep_finished"]
        said = f"sweep {sweep.pk} finished (3 trials); best val_loss = {scores[best]:.6g} (this run)"
        assert said in finished["json"]["message"]
    finally:
        worker.stop()
        hook.close()
        flush()
        study.close()
