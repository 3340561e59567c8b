"""The JSON API: launch (201/400/403/503), read an execution, its metrics and its log, cancel."""

import json

import django_rq
import pytest
from django.core.management import call_command

from experiments.models import Execution, Experiment, MetricHistory
from tests.helpers import tiny, token_for
from tests.workers import queues_at

# Transactions commit for real: jobs are enqueued on commit, as in production.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("real_queues")]


def post(client, data, token=None, raw=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    body = raw if raw is not None else json.dumps(data)
    return client.post("/api/executions", body, content_type="application/json", **headers)


def queued_job_ids(name="default"):
    return django_rq.get_queue(name).job_ids


def test_launch_creates_a_queued_execution_and_enqueues_its_job(client, launcher, capsys):
    response = post(client, tiny(), token_for(launcher, capsys))
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "queued"
    assert body["url"] == f"/api/executions/{body['id']}"
    execution = Execution.objects.get(pk=body["id"])
    assert execution.launched_by == launcher
    assert execution.epochs_total == 2
    assert execution.experiment.name == "boston_housing"
    assert queued_job_ids() == [f"execution-{execution.pk}"]


def test_a_gpu_run_goes_to_the_gpu_queue(client, launcher, capsys):
    config = tiny()
    config["tracking"]["params"]["device"] = "gpu"
    assert post(client, config, token_for(launcher, capsys)).status_code == 201
    assert len(queued_job_ids("gpu")) == 1
    assert queued_job_ids("default") == []


def test_an_invalid_config_is_400_with_every_problem_and_creates_nothing(client, launcher, capsys):
    config = tiny()
    config["model"]["network"][1]["units"] = -5
    config["training"]["epoch"] = 3
    response = post(client, config, token_for(launcher, capsys))
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {"path": "model.network[1].units", "message": "must be a positive integer, got -5"} in errors
    assert any(error["path"] == "training.epoch" for error in errors)
    assert Execution.objects.count() == 0
    assert queued_job_ids() == []


def test_an_unknown_layer_type_is_listed_beside_the_schemas_problems(client, launcher, capsys):
    config = tiny()
    config["model"]["network"][0]["type"] = "denze"
    config["training"]["epochs"] = -3
    response = post(client, config, token_for(launcher, capsys))
    assert response.status_code == 400
    errors = {error["path"]: error["message"] for error in response.json()["errors"]}
    assert errors["training.epochs"] == "must be a positive integer, got -3"
    assert errors["model.network[0].type"].startswith("unknown layer type 'denze'; did you mean 'dense'?")


def test_a_body_that_is_not_json_is_400(client, launcher, capsys):
    response = post(client, None, token_for(launcher, capsys), raw="{not json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"].startswith("the body is not valid JSON")


def test_launching_needs_a_login(client):
    assert post(client, tiny()).status_code == 401
    assert post(client, tiny(), token="not-a-token").status_code == 401


def test_launching_needs_the_add_execution_permission(client, viewer, capsys):
    response = post(client, tiny(), token_for(viewer, capsys))
    assert response.status_code == 403
    assert "experiments.add_execution" in response.json()["detail"]
    assert Execution.objects.count() == 0


def test_a_session_login_works_with_its_csrf_token(launcher):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(launcher)
    assert post(client, tiny()).status_code == 403  # no CSRF token
    from django.middleware.csrf import _get_new_csrf_string

    token = _get_new_csrf_string()
    client.cookies["csrftoken"] = token
    response = client.post(
        "/api/executions", json.dumps(tiny()), content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 201


def test_when_redis_is_down_launching_is_503_and_leaves_nothing_queued(client, launcher, capsys, settings):
    token = token_for(launcher, capsys)
    settings.RQ_QUEUES = queues_at("redis://127.0.0.1:1/0?socket_connect_timeout=1")
    response = post(client, tiny(), token)
    assert response.status_code == 503
    assert "the job queue is unavailable" in response.json()["detail"]
    assert "REDIS_URL" in response.json()["detail"]
    assert Execution.objects.count() == 0


def test_the_api_token_is_shown_once_stored_hashed_and_rotates_on_request(client, launcher, capsys):
    from django.core.management.base import CommandError

    from experiments.models import ApiToken

    first = token_for(launcher, capsys)
    assert len(first) >= 32
    stored = ApiToken.objects.get(user=launcher)
    assert first not in (stored.digest, stored.prefix)
    assert stored.prefix == first[:8]
    with pytest.raises(CommandError, match=rf"ada already has an API token .*starting {first[:8]}….*--rotate"):
        call_command("api_token", launcher.username)
    assert post(client, tiny(), first).status_code != 401  # asking again changed nothing

    call_command("api_token", launcher.username, "--rotate")
    second = capsys.readouterr().out.strip()
    assert second != first
    assert post(client, tiny(), first).status_code == 401
    assert post(client, tiny(), second).status_code == 201


def test_api_token_for_an_unknown_user_is_a_clear_error():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no user named 'nobody'"):
        call_command("api_token", "nobody")


@pytest.fixture
def finished(tmp_path, settings):
    settings.GYMNOS_TRAININGS_ROOT = tmp_path
    folder = tmp_path / "boston_housing" / "executions" / "06-16-31__27-11-2026"
    folder.mkdir(parents=True)
    (folder / "execution.log").write_bytes("line one\nnaïve line two\n".encode())
    experiment = Experiment.objects.create(name="boston_housing")
    execution = Execution.objects.create(
        experiment=experiment,
        folder_name=folder.name,
        folder_path=str(folder),
        status=Execution.Status.SUCCEEDED,
        title="Boston Housing",
        epochs=2,
        epochs_total=2,
        config=tiny(),
    )
    MetricHistory.objects.create(execution=execution, name="loss", values=[3.0, 2.0])
    MetricHistory.objects.create(execution=execution, name="val_loss", values=[3.5, None])
    return execution


def test_detail_metrics_and_log(client, viewer, finished):
    client.force_login(viewer)
    body = client.get(f"/api/executions/{finished.pk}").json()
    assert body["status"] == "succeeded"
    assert body["epoch"] == 2
    assert body["epochs"] == 2
    assert body["config"] == tiny()
    metrics = client.get(f"/api/executions/{finished.pk}/metrics").json()["metrics"]
    assert metrics == {"loss": [3.0, 2.0], "val_loss": [3.5, None]}
    log = client.get(f"/api/executions/{finished.pk}/log").json()
    assert log["data"] == "line one\nnaïve line two\n"
    assert log["offset"] == log["size"] == len("line one\nnaïve line two\n".encode())
    more = client.get(f"/api/executions/{finished.pk}/log?offset=9").json()
    assert more["data"] == "naïve line two\n"
    assert client.get(f"/api/executions/{finished.pk}/log?offset={log['offset']}").json()["data"] == ""


def test_a_missing_execution_is_404(client, viewer):
    client.force_login(viewer)
    assert client.get("/api/executions/999").status_code == 404


def test_cancelling_a_queued_run_removes_its_job(client, launcher, capsys):
    token = token_for(launcher, capsys)
    execution_id = post(client, tiny(), token).json()["id"]
    response = client.post(f"/api/executions/{execution_id}/cancel", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert queued_job_ids() == []
    again = client.post(f"/api/executions/{execution_id}/cancel", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert again.status_code == 409
    assert "is cancelled" in again.json()["detail"]


def test_cancelling_needs_the_permission(client, viewer, finished, capsys):
    response = client.post(
        f"/api/executions/{finished.pk}/cancel", HTTP_AUTHORIZATION=f"Bearer {token_for(viewer, capsys)}"
    )
    assert response.status_code == 403


def test_the_openapi_schema_documents_launching(client):
    schema = client.get("/api/openapi.json").json()
    launch = schema["paths"]["/api/executions"]["post"]
    assert set(launch["responses"]) >= {"201", "400", "503"}
    assert "experiment" in json.dumps(launch["requestBody"])
