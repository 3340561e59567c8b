"""Names a folder or a RemoteMonitor post gives: one rule (experiments/pipeline/names.py) at sync and the receiver.

A metric named ``<img src=x onerror=...>`` once ran script on a teammate's experiment page; a folder
named with a line break once broke the zip download's header. Such a name is refused where it
enters, and the refusal names the file and the name; nothing else of the folder is lost.
"""

import json

import pytest
from django.test import Client

from experiments.index.sync import sync_trainings
from experiments.models import Execution, Status
from experiments.pipeline.names import metric_name_problem
from tests.folders import SEED_METRICS, write_execution

pytestmark = pytest.mark.django_db

HOSTILE = "<img src=x onerror=window.__pwned=1>"


@pytest.mark.parametrize(
    "name",
    ["loss", "val_loss", "test_mean_absolute_error", "top_k_categorical_accuracy", "dense_1_mae", "f1-score", "lr"],
)
def test_the_names_keras_writes_are_metric_names(name):
    assert metric_name_problem(name) is None


@pytest.mark.parametrize(
    "name", [HOSTILE, "a&b", 'say "hi"', "it's", "val loss", "system/cpu", "line\nbreak", "", "x" * 201, "é"]
)
def test_markup_quotes_spaces_slashes_and_control_characters_are_not(name):
    assert metric_name_problem(name) is not None


# --- sync -----------------------------------------------------------------------------------------


def test_a_metric_with_a_hostile_name_is_reported_by_file_and_name_and_the_rest_of_the_folder_is_indexed(root):
    metrics = json.loads(json.dumps(SEED_METRICS))
    metrics["metrics"][HOSTILE] = [1.0, 2.0, 3.0, 4.0]
    write_execution(root, name="bad", metrics=metrics)
    report = sync_trainings(root)
    bad = Execution.objects.get(folder_name="bad")
    expected = (
        "metrics.json: the metric name '<img src=x onerror=window.__pwned=1>' has a character other than "
        "letters, digits, '_', '.' and '-'; not indexed"
    )
    assert bad.error == expected
    assert report.problems == [f"boston_housing/bad: {expected}"]
    assert bad.status == Status.SUCCEEDED
    assert bad.epochs == 4
    assert sorted(bad.histories.values_list("name", flat=True)) == sorted(SEED_METRICS["metrics"])
    assert HOSTILE not in json.dumps(bad.summary)


@pytest.mark.parametrize("name, code", [("run\n2", "U+000A"), ("tab\there", "U+0009"), ("bell\x07", "U+0007")])
def test_a_run_folder_named_with_a_control_character_is_reported_and_not_read(root, name, code):
    write_execution(root, name=name)
    write_execution(root, name="good")
    report = sync_trainings(root)
    assert list(Execution.objects.values_list("folder_name", flat=True)) == ["good"]
    assert report.problems == [
        f"boston_housing/executions/{name!r}: the folder name has a control character ({code}); "
        "names are printable text; not read"
    ]


def test_an_experiment_folder_named_with_a_line_break_is_reported_and_not_read(root):
    write_execution(root, name="run", dataset="boston\nhousing")
    write_execution(root, name="good")
    report = sync_trainings(root)
    assert list(Execution.objects.values_list("experiment__name", flat=True)) == ["boston_housing"]
    assert report.problems == [
        "'boston\\nhousing': the folder name has a control character (U+000A); names are printable text; not read"
    ]


# --- a worker's live epochs -----------------------------------------------------------------------


def test_a_worker_leaves_a_hostile_metric_a_callback_logged_out_of_the_live_index(trained):
    Execution.objects.record_epoch(trained.pk, {"loss": [2.0, 1.0], HOSTILE: [1.0, 1.0]}, 2)
    trained.refresh_from_db()
    assert trained.history("loss") == [2.0, 1.0]
    assert not trained.histories.filter(name=HOSTILE).exists()
    assert HOSTILE not in json.dumps(trained.summary)


# --- the RemoteMonitor receiver -------------------------------------------------------------------


@pytest.fixture
def receiver(owner_client):
    owner_client.post("/runs/remote/", {"experiment": "notebook", "title": "Notebook run", "epochs": 3})
    execution = Execution.objects.get(experiment__name="notebook")
    return execution, f"/publish/epoch/end/{execution.publish_tokens.get().token}/"


def test_a_post_with_a_hostile_metric_name_is_a_400_naming_it_that_stores_nothing(receiver):
    execution, url = receiver
    response = Client().post(url, {"data": json.dumps({"epoch": 0, "loss": 1.0, HOSTILE: 2.0})})
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "the metric name '<img src=x onerror=window.__pwned=1>' has a character other than "
        "letters, digits, '_', '.' and '-'"
    )
    assert execution.histories.count() == 0


def test_a_post_with_keras_metric_names_lands(receiver):
    execution, url = receiver
    posted = {"epoch": 0, "loss": 1.0, "val_top_k_categorical_accuracy": 0.5}
    response = Client().post(url, {"data": json.dumps(posted)})
    assert response.status_code == 200
    assert sorted(execution.histories.values_list("name", flat=True)) == ["loss", "val_top_k_categorical_accuracy"]


def test_a_remote_run_cannot_name_its_experiment_with_a_line_break(owner_client):
    response = owner_client.post("/runs/remote/", {"experiment": "note\nbook", "title": "Notebook run"}, follow=True)
    assert not Execution.objects.exists()
    assert "Could not add the run: experiment: Use a plain folder name" in response.content.decode()
