"""Alerts on real runs: two tiny Keras trainings, one that diverges, trained by a real ``rqworker`` process, fire
their owner's threshold, NaN and end rules once each to a webhook receiver on 127.0.0.1 (sent by that worker)."""

import pytest
from django.contrib.auth.models import User

from alerts.models import Delivery, Rule
from experiments.jobs import launching
from experiments.models import Execution
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
