"""/publish/epoch/end/<token>/: Keras RemoteMonitor posts become epochs on the execution's charts."""

import json
from typing import Any

import pytest
from django.test import Client

from experiments.models import Execution, PublishToken
from tests.folders import permalink

pytestmark = pytest.mark.django_db


@pytest.fixture
def remote(owner_client):
    """A run added for a script that trains elsewhere, and its receiver URL."""
    response = owner_client.post("/runs/remote/", {"experiment": "my_notebook", "title": "Notebook run", "epochs": 3})
    execution = Execution.objects.get(experiment__name="my_notebook")
    assert response.status_code == 302
    assert response["Location"] == f"/executions/{execution.pk}/"
    return execution, f"/publish/epoch/end/{execution.publish_tokens.get().token}/"


def keras_post(url, epoch, send_as_json=False, **metrics):
    """What keras.callbacks.RemoteMonitor sends: a form field ``data`` (or a JSON body), no session, no CSRF token."""
    client = Client(enforce_csrf_checks=True)
    payload = {"epoch": epoch, **metrics}
    headers: dict[str, Any] = {"HTTP_X_GYMNOS_EXECUTION": "my_notebook/whatever"}
    if send_as_json:
        return client.post(url, json.dumps(payload), content_type="application/json", **headers)
    return client.post(url, {"data": json.dumps(payload)}, **headers)


def test_posted_epochs_show_on_the_charts_like_any_other(remote, owner_client):
    execution, url = remote
    assert keras_post(url, 0, loss=4.0, val_loss=5.0).status_code == 200
    response = keras_post(url, 1, send_as_json=True, loss=3.0, val_loss=4.5)
    assert response.json() == {"execution": execution.pk, "epoch": 1, "epochs": 2, "status": "running"}
    data = owner_client.get(f"/executions/{execution.pk}/data.json").json()
    assert data["charts"]["loss"]["train"] == {"x": [1, 2], "y": [4.0, 3.0], "points": 2}
    assert data["charts"]["loss"]["val"]["y"] == [5.0, 4.5]
    assert "Epoch 2 of 3" in data["status_html"]
    execution.refresh_from_db()
    assert execution.summary["val_loss"] == {"last": 4.5, "best": 4.5, "best_epoch": 2}
    assert execution.final_val_loss == 4.5


def test_the_last_epoch_finishes_a_remote_run(remote):
    execution, url = remote
    for epoch in range(3):
        keras_post(url, epoch, loss=1.0 / (epoch + 1))
    execution.refresh_from_db()
    assert execution.status == "succeeded"
    assert execution.finished_at is not None
    assert execution.epochs == 3


def test_a_repeated_or_skipped_epoch_lands_at_its_number(remote):
    execution, url = remote
    keras_post(url, 0, loss=4.0)
    keras_post(url, 0, loss=3.9)
    keras_post(url, 2, loss=float("nan"))
    assert execution.history("loss") == [3.9, None, None]


def test_epochs_can_be_posted_to_a_run_gymnos_trained(trained, owner_client):
    owner_client.post(f"/executions/{trained.pk}/publish-token/")
    token = PublishToken.objects.get(execution=trained)
    page = owner_client.get(permalink(trained)).content.decode()
    assert f"/publish/epoch/end/{token.token}/" in page
    assert "RemoteMonitor(" in page
    keras_post(f"/publish/epoch/end/{token.token}/", 15, loss=0.5)
    trained.refresh_from_db()
    assert trained.history("loss")[-1] == 0.5
    assert trained.epochs == 16
    assert trained.status == "succeeded"


def test_bad_posts_say_what_was_expected(remote):
    _, url = remote
    client = Client()
    assert "form field 'data'" in client.post(url, {"other": "1"}).json()["detail"]
    assert "not valid JSON" in client.post(url, {"data": "{nope"}).json()["detail"]
    assert "counted from 0" in client.post(url, {"data": json.dumps({"epoch": -1})}).json()["detail"]
    assert "must be a number" in client.post(url, {"data": json.dumps({"epoch": 0, "loss": "low"})}).json()["detail"]
    assert client.post(url, "[1]", content_type="application/json").status_code == 400


def test_an_unknown_token_is_404_and_get_is_405(remote):
    _, url = remote
    assert keras_post("/publish/epoch/end/not-a-token/", 0, loss=1.0).status_code == 404
    assert Client().get(url).status_code == 405


def test_receiver_urls_are_made_by_people_who_may_launch(trained, teammate_client, outsider):
    assert teammate_client.post(f"/executions/{trained.pk}/publish-token/").status_code == 403
    assert teammate_client.post("/runs/remote/", {"experiment": "x"}).status_code == 403
    response = outsider.post(f"/executions/{trained.pk}/publish-token/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert PublishToken.objects.count() == 0
    assert not Execution.objects.filter(experiment__name="x").exists()


def test_making_receivers_is_post_only(trained, owner_client):
    assert owner_client.get(f"/executions/{trained.pk}/publish-token/").status_code == 405
    assert owner_client.get("/runs/remote/").status_code == 405


def test_a_remote_run_needs_a_plain_experiment_name(owner_client):
    response = owner_client.post("/runs/remote/", {"experiment": "../etc"}, follow=True)
    assert "Use a plain folder name" in response.content.decode()
    assert PublishToken.objects.count() == 0
