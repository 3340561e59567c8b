"""The queue page and Cancel, on a real Redis with a real worker; and a clear notice when Redis is down."""

import os

import django_rq
import pytest

from experiments.models import Execution, Experiment
from tests.forms import form_for
from tests.helpers import tiny
from tests.workers import WorkerProcess, flush, queues_at, wait_for, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def queues(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("GYMNOS_CALLBACK_MODULES", "tests.hooks")
    settings.RQ_QUEUES = queues_at()
    settings.GYMNOS_TRAININGS_ROOT = tmp_path / "trainings"
    flush()
    yield
    flush()


def launch(client, config):
    response = client.post("/runs/new/", form_for(config))
    assert response.status_code == 302, response.content.decode()[-2000:]
    return Execution.objects.latest("pk")


def test_waiting_runs_are_listed_in_order_with_who_launched_them(owner_client, teammate_client):
    first, second = launch(owner_client, tiny()), launch(owner_client, tiny())
    page = teammate_client.get("/queue/").content.decode()
    assert "Waiting (2)" in page
    assert page.index(f"/executions/{first.pk}/") < page.index(f"/executions/{second.pk}/")
    assert page.count("<td>olivia</td>") == 2
    assert "No worker is running" in page
    assert "python manage.py up" in page
    assert teammate_client.get("/queue/fragment/").content.decode().count("<td>olivia</td>") == 2


def test_an_empty_queue_says_how_to_start(owner_client):
    page = owner_client.get("/queue/").content.decode()
    assert "Nothing is waiting" in page
    assert "No run is training right now" in page
    assert "queue/fragment/" in page


def test_the_page_renders_with_a_clear_notice_when_redis_is_down(owner_client, settings, owner):
    Execution.objects.create(
        experiment=Experiment.objects.create(name="iris"), status="queued", launched_by=owner, queue="default"
    )
    settings.RQ_QUEUES = queues_at("redis://127.0.0.1:1/0?socket_connect_timeout=1")
    for url in ("/queue/", "/queue/fragment/"):
        response = owner_client.get(url)
        page = response.content.decode()
        assert response.status_code == 200
        assert "The job queue is down." in page
        assert "REDIS_URL" in page
        assert "Waiting (1)" in page


def test_an_outsider_is_sent_to_log_in_and_posts_are_405(outsider, owner_client):
    for url in ("/queue/", "/queue/fragment/"):
        response = outsider.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
        assert owner_client.post(url).status_code == 405


def test_cancelling_a_queued_run_takes_it_off_the_queue(owner_client):
    execution = launch(owner_client, tiny())
    assert django_rq.get_queue("default").job_ids == [execution.job_id]
    response = owner_client.post(f"/executions/{execution.pk}/cancel/")
    assert response.status_code == 302
    assert response["Location"] == f"/executions/{execution.pk}/"
    execution.refresh_from_db()
    assert execution.status == "cancelled"
    assert execution.error == "cancelled by a user"
    assert django_rq.get_queue("default").job_ids == []
    page = owner_client.get(response["Location"]).content.decode()
    assert "Cancelled boston_housing/queued #" in page
    assert "Cancel run" not in page


def test_cancelling_a_finished_run_says_why_not(owner_client):
    execution = launch(owner_client, tiny())
    Execution.objects.filter(pk=execution.pk).update(status="succeeded")
    page = owner_client.post(f"/executions/{execution.pk}/cancel/", follow=True).content.decode()
    assert "is succeeded; only queued or running runs can be cancelled" in page
    execution.refresh_from_db()
    assert execution.status == "succeeded"


def test_cancel_needs_the_permission_a_login_and_a_post(owner_client, teammate_client, outsider):
    execution = launch(owner_client, tiny())
    assert teammate_client.post(f"/executions/{execution.pk}/cancel/").status_code == 403
    response = outsider.post(f"/executions/{execution.pk}/cancel/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert owner_client.get(f"/executions/{execution.pk}/cancel/").status_code == 405
    execution.refresh_from_db()
    assert execution.status == "queued"
    assert django_rq.get_queue("default").job_ids == [execution.job_id]


@pytest.mark.training
def test_a_worker_shows_idle_then_busy_with_its_run_and_cancel_stops_it(owner_client, tmp_path):
    worker = WorkerProcess(
        worker_env(tmp_path / "trainings", tmp_path / "cache", GYMNOS_TEST_EPOCH_PAUSE="0.5"), tmp_path / "worker.log"
    )
    try:
        worker.wait_ready()
        page = owner_client.get("/queue/fragment/").content.decode()
        assert worker.name in page
        assert '<span class="badge succeeded">idle</span>' in page
        assert "ago" in page
        config = tiny(epochs=40, callbacks=[{"type": "lambda_callback", "on_epoch_end": "tests.hooks.pause"}])
        execution = launch(owner_client, config)
        wait_for(lambda: Execution.objects.get(pk=execution.pk).epochs >= 2, timeout=120, message="two epochs")
        page = owner_client.get("/queue/").content.decode()
        assert "In progress (1)" in page
        assert f"<code>{worker.name}</code>" in page
        assert '<span class="badge running">busy</span>' in page
        execution.refresh_from_db()
        detail = owner_client.get(f"/executions/{execution.pk}/", follow=True).content.decode()
        assert f"Epoch {execution.epochs}" in detail
        assert "of 40" in detail
        assert "Cancel run" in detail
        assert owner_client.post(f"/executions/{execution.pk}/cancel/").status_code == 302
        execution.refresh_from_db()
        assert execution.status == "cancelled"
        wait_for(
            lambda: "idle" in owner_client.get("/queue/fragment/").content.decode(),
            timeout=60,
            message="worker idle again",
        )
        assert not os.path.exists(os.path.join(execution.folder_path, "model.h5"))
    finally:
        worker.stop()
