"""Bounded input: no config, post or form can take the web process down, and each refusal says why.

Every probe here was a reproduced failure (a 500, a process grown to gigabytes, a file's existence
told to a stranger) before the bounds existed.
"""

import json
import os
import resource
import subprocess
import sys

import pytest
from django.test import Client

from experiments.models import Execution
from tests.forms import form_for
from tests.helpers import ROOT, tiny

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("real_queues")]


def nested(depth, leaf=1):
    """``[[[...1...]]]`` ``depth`` deep, as JSON text (built without recursion)."""
    return "[" * depth + json.dumps(leaf) + "]" * depth


def launch(client, body):
    return client.post("/api/executions", body, content_type="application/json")


@pytest.fixture
def api(owner_client):
    return owner_client


def test_a_launch_body_nested_ten_thousand_deep_is_a_400_in_json(api):
    response = launch(api, nested(10_000))
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["errors"] == [
        {"path": "", "message": "the body is nested 10000 deep; at most 64 levels are accepted"}
    ]
    assert Execution.objects.count() == 0


def test_params_nested_nine_hundred_deep_inside_a_config_are_refused(api):
    config = tiny()
    config["tracking"]["params"] = {"deep": "@"}
    body = json.dumps(config).replace('"@"', nested(900))
    response = launch(api, body)
    assert response.status_code == 400
    assert "at most 64 levels" in response.json()["errors"][0]["message"]


def test_a_launch_body_over_the_size_limit_is_refused(api):
    config = tiny()
    config["experiment"]["description"] = "x" * (1 << 20)
    response = launch(api, json.dumps(config))
    assert response.status_code == 400
    assert "at most 1,048,576 are accepted" in response.json()["errors"][0]["message"]


def test_the_forms_json_nested_deep_is_shown_beside_the_json(owner_client):
    data = form_for(tiny())
    data["config"] = nested(10_000, {})
    page = owner_client.post("/runs/new/", data)
    assert page.status_code == 200
    assert "The config is nested 10001 deep; at most 64 levels are accepted" in page.content.decode()
    assert Execution.objects.count() == 0


def test_a_config_file_nested_deep_is_reported_by_train_without_a_traceback(tmp_path):
    config = tmp_path / "deep.json"
    config.write_text(nested(10_000))
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "train", str(config)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"},
    )  # fmt: skip
    assert result.returncode == 2
    assert "the config is nested 10000 deep" in result.stderr
    assert "Traceback" not in result.stderr


def test_more_epochs_than_the_limit_is_a_problem_at_its_path(api, monkeypatch):
    monkeypatch.setenv("GYMNOS_MAX_EPOCHS", "1000")
    response = launch(api, json.dumps(tiny(epochs=1001)))
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"path": "training.epochs", "message": "must be at most 1,000 (GYMNOS_MAX_EPOCHS), got 1,001"}
    ]


# --- RemoteMonitor posts ----------------------------------------------------------------------------


@pytest.fixture
def receiver_url(owner_client):
    owner_client.post("/runs/remote/", {"experiment": "notebook", "title": "Notebook run", "epochs": 3})
    execution = Execution.objects.get(experiment__name="notebook")
    return execution, f"/publish/epoch/end/{execution.publish_tokens.get().token}/"


def post(url, payload):
    return Client().post(url, {"data": payload if isinstance(payload, str) else json.dumps(payload)})


@pytest.mark.parametrize(
    "payload, said",
    [
        ({"epoch": 100_000_000, "loss": 1.0}, "'epoch' must be below 1,000,000 (GYMNOS_MAX_EPOCHS), got 100,000,000"),
        ({"epoch": 5000, "loss": 1.0}, "epoch 5000 is more than 1,000 epochs after the last one posted"),
        ({"epoch": 0, **{f"m{i}": 1.0 for i in range(101)}}, "a post may hold at most 100 metrics, got 101"),
        ({"epoch": 0, "x" * 201: 1.0}, "the metric name '" + "x" * 60 + "'... is 201 characters; at most 200"),
        ({"epoch": 0, "system/cpu": 1.0}, "the metric name 'system/cpu' has a character other than letters, digits"),
        (nested(10_000), "the epoch data is nested 10000 deep; at most 2 levels are accepted"),
    ],
)
def test_a_post_past_a_bound_is_a_400_that_stores_nothing(receiver_url, payload, said):
    execution, url = receiver_url
    response = post(url, payload)
    assert response.status_code == 400
    assert said in response.json()["detail"]
    assert execution.histories.count() == 0
    assert Execution.objects.get(pk=execution.pk).status == "queued"


def test_a_huge_post_is_refused_before_it_is_parsed(receiver_url):
    _, url = receiver_url
    response = post(url, {"epoch": 0, "loss": 1.0, "note": "x" * 70_000})
    assert response.status_code == 400
    assert "at most 65,536 are accepted" in response.json()["detail"]


def test_posts_within_the_bounds_still_land(receiver_url):
    execution, url = receiver_url
    assert post(url, {"epoch": 0, "loss": 2.0}).status_code == 200
    assert post(url, {"epoch": 900, "loss": 1.0}).status_code == 200  # a gap of up to 1,000 epochs is kept
    assert len(execution.history("loss")) == 901


# --- dataset files from the web ---------------------------------------------------------------------


def file_config(path):
    config = tiny()
    config["model"]["input_shape"] = [2]
    config["dataset"] = {"path": str(path)}
    return config


def test_a_dataset_path_outside_the_data_roots_says_nothing_of_the_file(api, settings, tmp_path):
    roots = tmp_path / "data"
    roots.mkdir()
    settings.GYMNOS_DATA_ROOTS = [roots]
    secret = tmp_path / "secret.csv"
    secret.write_text("a,b,target\n1,2,3\n")
    answers = [launch(api, json.dumps(file_config(path))).json()["errors"] for path in (secret, tmp_path / "nope.csv")]
    messages = [
        problem["message"].replace(str(tmp_path / "nope.csv"), "P").replace(str(secret), "P") for [problem] in answers
    ]
    assert messages[0] == messages[1]  # the same words whether the file is there or not
    assert answers[0][0]["path"] == "dataset.path"
    assert "GYMNOS_DATA_ROOTS" in messages[0]
    assert "columns" not in messages[0]
    assert "no such file" not in messages[0]


def test_a_dataset_path_inside_the_data_roots_is_checked_as_before(api, settings, tmp_path):
    roots = tmp_path / "data"
    roots.mkdir()
    settings.GYMNOS_DATA_ROOTS = [roots]
    (roots / "houses.csv").write_text("a,b,price\n1,2,3\n")
    [problem] = launch(api, json.dumps(file_config(roots / "houses.csv"))).json()["errors"]
    assert problem == {
        "path": "dataset.target",
        "message": "column 'target' is not in houses.csv; its columns are: a, b, price",
    }
    link = roots / "escape.csv"
    link.symlink_to(tmp_path / "elsewhere.csv")
    [problem] = launch(api, json.dumps(file_config(link))).json()["errors"]
    assert problem["path"] == "dataset.path"
    assert "GYMNOS_DATA_ROOTS" in problem["message"]


# --- a model that needs more than the check may build ------------------------------------------------


@pytest.mark.training
def test_a_model_too_big_to_build_is_a_400_and_the_web_process_stays_small(api):
    config = tiny()
    config["model"]["network"] = [
        {"type": "dense", "units": 100_000_000},
        {"type": "conv2d", "filters": 1, "kernel_size": 3},
    ]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tensorflow_before = "tensorflow" in sys.modules  # an earlier test of the session may have loaded it
    response = launch(api, json.dumps(config))
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "path": "model.network",
            "message": "the model needs more than 2048 MB to build (the limit for checking a config, GYMNOS_CHECK_MEMORY_MB)",  # noqa: E501
        }
    ]
    assert grown_mb < 100
    assert ("tensorflow" in sys.modules) == tensorflow_before
    assert Execution.objects.count() == 0


@pytest.mark.training
def test_a_model_that_takes_too_long_to_build_is_a_400(api, settings):
    settings.GYMNOS_CHECK_SECONDS = 1
    config = tiny()
    config["model"]["network"] = [{"type": "dense", "units": 4}] * 400 + [{"type": "dense", "units": 1}]
    response = launch(api, json.dumps(config))
    assert response.status_code == 400
    [problem] = response.json()["errors"]
    assert problem["path"] == "model.network"
    assert "took longer than 1 s to build" in problem["message"]
