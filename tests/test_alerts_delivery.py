"""Alerts delivered for real: the core's transitions and epochs fire rules after commit, an RQ worker on the test
Redis sends them to a webhook receiver and an SMTP server on 127.0.0.1, each alert once."""

import datetime as dt
import math

import django_rq
import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from rq import SimpleWorker

from alerts.firing import fire, fire_stalled, release_due_retries
from alerts.models import Delivery, Rule
from alerts.rules import Event
from experiments.jobs.reaper import reap
from experiments.models import Execution, Experiment, MetricHistory, Status
from tests.alert_receivers import SMTPServer, Webhook
from tests.workers import flush

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def hook(monkeypatch):
    receiver = Webhook()
    monkeypatch.setenv("GYMNOS_WEBHOOK_HOSTS", f"127.0.0.1:{receiver.port}")
    yield receiver
    receiver.close()


@pytest.fixture
def smtp(settings):
    server = SMTPServer()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    yield server
    server.close()


@pytest.fixture
def quick_retries(settings):
    settings.GYMNOS_ALERT_RETRY_INTERVALS = [0, 0]  # three attempts, no wait between them


@pytest.fixture
def ada():
    return User.objects.create_user("ada", email="ada@example.org", password="pw-ada-123")


@pytest.fixture
def running(ada):
    experiment = Experiment.objects.create(name="mnist")
    return Execution.objects.create(
        experiment=experiment,
        folder_name="07-00-00__06-12-2026",
        status=Status.RUNNING,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
        job_id="execution-1",
        launched_by=ada,
    )


class BurstWorker(SimpleWorker):
    """RQ's worker, without its command channel (stop, kill): its listening thread polls every 60 s, and the
    worker's teardown waits for that poll to end."""

    def subscribe(self):
        pass

    def unsubscribe(self):
        pass


def work():
    """A real RQ worker (in this process, so it sees the test's settings) until the queue is empty."""
    queue = django_rq.get_queue("default")
    BurstWorker([queue], connection=queue.connection).work(burst=True)


def rule(owner, **fields):
    return Rule.objects.create(owner=owner, **{"scope": Rule.Scope.MINE, "channel": Rule.Channel.WEBHOOK, **fields})


def test_a_failing_run_fires_its_rule_once_to_the_webhook(real_queues, hook, ada, running):
    rule(ada, scope=Rule.Scope.RUN, execution=running, kind=Rule.Kind.FAILED, webhook_url=hook.url)
    rule(ada, kind=Rule.Kind.FINISHED, webhook_url=hook.url)  # not this event

    assert Execution.objects.fail(running.pk, "loss exploded at epoch 3")
    work()

    (post,) = hook.received
    assert post["path"] == "/hooks/gymnos"
    assert post["json"]["alert"]["event"] == "failed"
    assert post["json"]["run"] == {
        "id": running.pk,
        "experiment": "mnist",
        "folder": running.folder_name,
        "status": "failed",
        "path": f"/executions/{running.pk}/",
    }
    assert "mnist/07-00-00__06-12-2026: failed: loss exploded at epoch 3" in post["json"]["message"]
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("sent", 1)


def test_the_same_event_delivered_twice_is_sent_once(real_queues, hook, ada, running):
    rule(ada, kind=Rule.Kind.CANCELLED, webhook_url=hook.url, webhook_format=Rule.Format.SLACK)
    Execution.objects.cancel(running.pk)
    # The event announced again (a second process saw it too), and the delivery's job queued twice.
    assert fire(Event(running.pk, "ended", status=Status.CANCELLED)) == []
    django_rq.get_queue("default").enqueue("alerts.jobs.deliver", Delivery.objects.get().pk)
    work()

    assert [post["json"] for post in hook.received] == [{"text": "Gymnos: mnist/07-00-00__06-12-2026: cancelled"}]
    assert Delivery.objects.get().status == "sent"


def test_a_threshold_fires_once_as_the_metric_crosses_it(real_queues, hook, ada, running):
    rule(
        ada,
        kind=Rule.Kind.THRESHOLD,
        metric="val_accuracy",
        operator=">",
        threshold=0.9,
        condition="val_accuracy > 0.9",
        webhook_url=hook.url,
        webhook_format=Rule.Format.TEAMS,
    )
    history = []
    for value in (0.52, 0.81, 0.93, 0.95):
        history.append(value)
        Execution.objects.record_epoch(running.pk, {"loss": [1.0] * len(history), "val_accuracy": list(history)})
    work()

    (post,) = hook.received
    assert post["json"]["@type"] == "MessageCard"
    assert "val_accuracy = 0.93 at epoch 3 (> 0.9)" in post["json"]["text"]
    assert Delivery.objects.get().details["value"] == 0.93


def test_a_nan_in_a_metric_fires(real_queues, hook, ada, running):
    rule(ada, kind=Rule.Kind.NAN, webhook_url=hook.url)
    Execution.objects.record_epoch(running.pk, {"loss": [2.5]})
    Execution.objects.record_epoch(running.pk, {"loss": [2.5, math.nan]})
    Execution.objects.record_epoch(running.pk, {"loss": [2.5, math.nan, math.inf]})
    work()

    (post,) = hook.received
    assert "loss is not finite at epoch 2" in post["json"]["message"]
    assert post["json"]["details"]["metrics"] == {"loss": "nan"}
    # The index keeps the NaN as a gap, as before.
    assert MetricHistory.objects.get(execution=running, name="loss").values == [2.5, None, None]


def test_a_receiver_answering_500_gets_retries_then_the_rule_shows_the_failure(
    real_queues, hook, quick_retries, ada, running
):
    hook.server.status = 500
    failing = rule(ada, kind=Rule.Kind.FAILED, webhook_url=hook.url)
    Execution.objects.fail(running.pk, "boom")
    work()

    assert len(hook.received) == 3  # the first attempt and two retries, then no more
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert "answered 500" in delivery.reason
    failing.refresh_from_db()
    assert failing.failing
    assert "answered 500" in failing.last_error

    client = Client()
    client.force_login(ada)
    page = client.get("/alerts/").content.decode()
    assert "failing" in page
    assert "answered 500 Internal Server Error" in page

    # The next alert of a failing rule gets one attempt; a success clears the mark.
    hook.server.status = 200
    other = Execution.objects.create(experiment=running.experiment, status=Status.RUNNING, launched_by=ada)
    Execution.objects.fail(other.pk, "boom again")
    work()
    failing.refresh_from_db()
    assert len(hook.received) == 4
    assert not failing.failing


def test_a_retry_that_waits_is_queued_again_by_the_reaper(real_queues, hook, settings, ada, running):
    settings.GYMNOS_ALERT_RETRY_INTERVALS = [1]
    hook.server.status = 503
    rule(ada, kind=Rule.Kind.FAILED, webhook_url=hook.url)
    Execution.objects.fail(running.pk, "boom")
    work()
    assert len(hook.received) == 1
    assert Delivery.objects.get().status == "pending"

    hook.server.status = 200
    deadline = timezone.now() + dt.timedelta(seconds=5)
    while not release_due_retries() and timezone.now() < deadline:
        pass
    work()
    assert len(hook.received) == 2
    assert Delivery.objects.get().status == "sent"


def test_an_ended_run_is_mailed_through_the_smtp_server(real_queues, smtp, ada, running):
    rule(ada, kind=Rule.Kind.FINISHED, channel=Rule.Channel.EMAIL)
    Execution.objects.finish(running.pk)
    work()

    (message,) = smtp.messages
    assert message["to"] == ["ada@example.org"]
    assert "Subject: Gymnos: mnist/07-00-00__06-12-2026: finished" in message["data"]
    assert Delivery.objects.get().status == "sent"


def test_a_stalled_run_rings_the_bell(real_queues, ada, running):
    rule(ada, kind=Rule.Kind.STALLED, stall_minutes=5, channel=Rule.Channel.IN_APP)
    Execution.objects.record_epoch(running.pk, {"loss": [1.0, 0.9]})
    assert fire_stalled() == 0  # it just ended an epoch

    later = timezone.now() + dt.timedelta(minutes=6)
    assert fire_stalled(now=later) == 1
    assert fire_stalled(now=later + dt.timedelta(minutes=1)) == 0  # once per stall
    work()

    client = Client()
    client.force_login(ada)
    page = client.get("/alerts/").content.decode()
    assert 'id="alerts-unread">1<' in page
    assert "no epoch for 6 min (the last: 2)" in page
    client.post("/alerts/read/")
    assert 'id="alerts-unread"' not in client.get("/alerts/").content.decode()


def test_the_reaper_runs_the_stalled_check(real_queues, ada, running):
    rule(ada, kind=Rule.Kind.STALLED, stall_minutes=1, channel=Rule.Channel.IN_APP)
    Execution.objects.filter(pk=running.pk).update(started_at=timezone.now() - dt.timedelta(minutes=3))
    reaped = reap()
    assert reaped["alert the rules watching runs that stalled"] == 1
    assert Delivery.objects.get().event == "stalled@0"


def test_a_rule_is_rate_limited(real_queues, settings, ada):
    settings.GYMNOS_ALERTS_PER_HOUR = 2
    rule(ada, kind=Rule.Kind.FAILED, channel=Rule.Channel.IN_APP)
    experiment = Experiment.objects.create(name="mnist")
    for _ in range(3):
        execution = Execution.objects.create(experiment=experiment, status=Status.RUNNING, launched_by=ada)
        Execution.objects.fail(execution.pk, "boom")
    work()
    assert sorted(Delivery.objects.values_list("status", flat=True)) == ["sent", "sent", "suppressed"]
    assert "rate limited" in Delivery.objects.get(status="suppressed").reason


def test_another_users_runs_do_not_fire_my_rule(real_queues, ada, running):
    rule(ada, kind=Rule.Kind.FAILED, channel=Rule.Channel.IN_APP)
    tom = User.objects.create_user("tom")
    theirs = Execution.objects.create(experiment=running.experiment, status=Status.RUNNING, launched_by=tom)
    Execution.objects.fail(theirs.pk, "boom")
    assert not Delivery.objects.exists()


def test_deliveries_whose_job_redis_lost_are_settled_by_the_reaper(real_queues, hook, ada, running):
    rule(ada, kind=Rule.Kind.FAILED, webhook_url=hook.url)
    Execution.objects.fail(running.pk, "boom")
    other = Execution.objects.create(experiment=running.experiment, status=Status.RUNNING, launched_by=ada)
    Execution.objects.fail(other.pk, "boom")
    flush()  # Redis lost both jobs
    pending, sending = Delivery.objects.order_by("pk")
    Delivery.objects.filter(pk=sending.pk).update(status="sending")  # its worker died as it sent
    assert reap()["settle the alert deliveries whose job Redis lost"] == 0  # too recent to call lost
    Delivery.objects.update(created_at=timezone.now() - dt.timedelta(minutes=11))

    assert reap()["settle the alert deliveries whose job Redis lost"] == 2
    work()
    assert [post["json"]["run"]["id"] for post in hook.received] == [running.pk]
    assert Delivery.objects.get(pk=pending.pk).status == "sent"
    lost = Delivery.objects.get(pk=sending.pk)
    assert (lost.status, lost.reason) == ("failed", "its worker stopped while sending it; it may have been sent")


def test_a_run_whose_machine_went_away_fires_worker_lost_once_when_the_reaper_sees_it(real_queues, hook, ada, running):
    rule(ada, kind=Rule.Kind.WORKER_LOST, webhook_url=hook.url)
    rule(ada, kind=Rule.Kind.SWEEP_FINISHED, webhook_url=hook.url)  # not this event
    Execution.objects.filter(pk=running.pk).update(heartbeat_at=timezone.now() - dt.timedelta(minutes=5))

    assert reap()["check for lost workers"] == 1
    assert reap()["check for lost workers"] == 0  # seen once: the run has failed
    work()

    (post,) = hook.received
    assert post["json"]["alert"]["event"] == "worker_lost@1"
    assert post["json"]["run"]["status"] == "failed"
    assert "its worker or machine went away (worker lost" in post["json"]["message"]
    assert post["json"]["message"].endswith("; failed")
    assert Delivery.objects.get().status == "sent"
