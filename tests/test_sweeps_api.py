"""``/api/sweeps``: launch (201/400/403/503), read a sweep, cancel it (200/409/403); audited."""

import json

import django_rq
import pytest

from audit.models import Entry
from experiments.models import Execution
from sweeps.models import Sweep, Trial
from tests.folders import make_run
from tests.helpers import tiny, token_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("real_queues")]

DOCUMENT = {
    "name": "width",
    "base": tiny(),
    "parameters": {"model.network[0].units": {"choice": [4, 8]}},
    "method": "grid",
    "parallel": 1,
}


def post(client, path, data=None, token=None, raw=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    body = raw if raw is not None else json.dumps(data)
    return client.post(path, body, content_type="application/json", **headers)


def get(client, path, token):
    return client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")


def test_launching_a_sweep_creates_it_and_queues_its_first_step_at_the_front(client, launcher, capsys):
    django_rq.get_queue("default").enqueue_call("experiments.jobs.tasks.run_execution", args=(999,), job_id="ahead")
    response = post(client, "/api/sweeps", DOCUMENT, token_for(launcher, capsys))
    assert response.status_code == 201
    body = response.json()
    sweep = Sweep.objects.get(pk=body["id"])
    assert body == {"id": sweep.pk, "url": f"/api/sweeps/{sweep.pk}", "status": "running"}
    assert (sweep.name, sweep.trials_total, sweep.parallel, sweep.created_by) == ("width", 2, 1, launcher)
    assert sweep.base_config == tiny()
    assert sweep.study_name.startswith("gymnos-sweep-")
    # Asking the study for trials happens on a worker, ahead of the runs already waiting.
    assert django_rq.get_queue("default").job_ids == [f"sweep-{sweep.pk}-advance", "ahead"]
    entry = Entry.objects.get(action=Entry.Action.SWEEP_LAUNCH)
    assert entry.actor == launcher
    assert entry.target == f"sweep {sweep.pk} (width)"
    assert entry.details == {"via": "api"}


def test_a_sweep_may_start_from_a_runs_config(client, launcher, capsys, root):
    run = make_run(root, "06-16-31__08-04-2019")
    document = {**DOCUMENT, "base": run.pk}
    response = post(client, "/api/sweeps", document, token_for(launcher, capsys))
    assert response.status_code == 201, response.json()
    sweep = Sweep.objects.get(pk=response.json()["id"])
    assert sweep.base_execution == run
    assert sweep.base_config == run.config
    assert sweep.document["base"] == run.pk


def test_every_problem_is_a_400_with_its_path_and_nothing_is_created(client, launcher, capsys):
    document = {
        **DOCUMENT,
        "parameters": {"training.epoch": {"choice": [1]}, "model.network[0].units": {"choice": [0, 4]}},
        "parallel": -1,
    }
    document["base"] = {**tiny(), "training": {**tiny()["training"], "batch_size": 0}}
    token = token_for(launcher, capsys)
    response = post(client, "/api/sweeps", document, token)
    assert response.status_code == 400
    paths = [problem["path"] for problem in response.json()["errors"]]
    assert paths == ["parallel", "base.training.batch_size"]  # the document's and its base's at once
    document["base"] = tiny()
    response = post(client, "/api/sweeps", document, token)
    paths = [problem["path"] for problem in response.json()["errors"]]
    # Then the parameters (checked against a valid base), still beside the document's own problem.
    assert paths == ["parallel", 'parameters["training.epoch"]', 'parameters["model.network[0].units"].choice[0]']
    assert Sweep.objects.count() == 0
    assert django_rq.get_queue("default").job_ids == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "the body is not valid JSON"),
        (b"[" * 100 + b"]" * 100, "nested 100 deep"),
        (b"[1, 2]", "must be a JSON object, got a list"),
    ],
)
def test_a_body_that_is_not_a_document_is_a_400(client, launcher, capsys, raw, message):
    response = post(client, "/api/sweeps", raw=raw, token=token_for(launcher, capsys))
    assert response.status_code == 400
    assert message in response.json()["errors"][0]["message"]


def test_launching_needs_the_permission(client, viewer, capsys):
    response = post(client, "/api/sweeps", DOCUMENT, token_for(viewer, capsys))
    assert response.status_code == 403
    assert "experiments.add_execution" in response.json()["detail"]
    assert post(client, "/api/sweeps", DOCUMENT).status_code == 401
    assert Sweep.objects.count() == 0


def test_when_redis_is_down_launching_is_503_and_creates_nothing(client, launcher, capsys, settings):
    token = token_for(launcher, capsys)
    settings.RQ_QUEUES = {
        name: {"URL": "redis://127.0.0.1:1/0?socket_connect_timeout=1"} for name in ("default", "gpu")
    }
    response = post(client, "/api/sweeps", DOCUMENT, token)
    assert response.status_code == 503
    assert "the job queue is unavailable" in response.json()["detail"]
    assert Sweep.objects.count() == 0


def test_reading_a_sweep_gives_its_counts_best_trial_and_trials(client, launcher, capsys, root):
    token = token_for(launcher, capsys)
    sweep = Sweep.objects.get(pk=post(client, "/api/sweeps", DOCUMENT, token).json()["id"])
    good = make_run(root, "06-16-31__08-04-2019")
    worse = make_run(root, "06-16-32__08-04-2019")
    Trial.objects.create(sweep=sweep, number=0, execution=good, params={"model.network[0].units": 8}, value=8.0)
    Trial.objects.create(sweep=sweep, number=1, execution=worse, params={"model.network[0].units": 4}, value=9.5)
    body = get(client, f"/api/sweeps/{sweep.pk}", token).json()
    assert body["counts"] == {"done": 2, "queued": 0, "running": 0, "pruned": 0, "failed": 0, "total": 2}
    assert body["best"]["number"] == 0
    assert body["best"]["value"] == 8.0
    assert body["best"]["execution"] == good.pk
    assert [t["params"]["model.network[0].units"] for t in body["trials"]] == [8, 4]
    assert body["trials"][0]["epochs"] == 15
    assert body["running_best"] == [8.0, 8.0]
    assert body["objective"] == {"metric": "val_loss", "direction": "minimize", "which": "best"}
    assert body["page"] == f"/sweeps/{sweep.pk}/"
    assert get(client, "/api/sweeps/999999", token).status_code == 404
    assert client.get(f"/api/sweeps/{sweep.pk}").status_code == 401


def test_cancelling_ends_the_sweep_and_its_queued_trials_once(client, launcher, viewer, capsys):
    token = token_for(launcher, capsys)
    sweep = Sweep.objects.get(pk=post(client, "/api/sweeps", DOCUMENT, token).json()["id"])
    from experiments.jobs import launching

    queued = launching.launch(tiny(), user=launcher)
    Trial.objects.create(sweep=sweep, number=0, execution=queued, params={"model.network[0].units": 4})
    assert post(client, f"/api/sweeps/{sweep.pk}/cancel", token=token_for(viewer, capsys)).status_code == 403
    response = post(client, f"/api/sweeps/{sweep.pk}/cancel", token=token)
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert Execution.objects.get(pk=queued.pk).status == "cancelled"
    assert f"execution-{queued.pk}" not in django_rq.get_queue("default").job_ids
    response = post(client, f"/api/sweeps/{sweep.pk}/cancel", token=token)
    assert response.status_code == 409
    assert "cancelled" in response.json()["detail"]
    assert Entry.objects.filter(action=Entry.Action.SWEEP_CANCEL).count() == 1


def test_the_openapi_schema_describes_the_sweep_document(client, launcher):
    client.force_login(launcher)
    schema = client.get("/api/openapi.json").json()
    launch = schema["paths"]["/api/sweeps"]["post"]
    assert set(launch["responses"]) >= {"201", "400", "403", "503"}
    body = launch["requestBody"]["content"]["application/json"]["schema"]
    assert {"base", "parameters", "method", "trials", "parallel", "objective", "pruner"} <= set(body["properties"])
    assert "/api/sweeps/{sweep_id}/cancel" in schema["paths"]
