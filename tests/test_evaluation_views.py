"""The Evaluation panels' JSON, share links and ``GET /api/executions/{id}/evaluation``, on reports that real
runs wrote (an iris classifier and a Boston regressor, trained once for this module)."""

import json
import os
from typing import Any

import pytest
from django.test import Client

from experiments.evaluation.report import MAX_BYTES
from experiments.models import Execution, ShareLink
from experiments.pipeline import load_config, run_experiment
from tests.folders import make_run, permalink
from tests.helpers import tiny

pytestmark = [pytest.mark.django_db, pytest.mark.training]

IRIS: dict[str, Any] = {
    "experiment": {"name": "Iris"},
    "model": {
        "input_shape": [4],
        "network": [
            {"type": "dense", "units": 16, "activation": "relu"},
            {"type": "dense", "units": 3, "activation": "softmax"},
        ],
        "compilation": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
    },
    "dataset": {"name": "iris", "transformers": [{"type": "standard_scaler"}]},
    "training": {"samples": {"fit": 0.6, "val": 0.2, "test": 0.2}, "epochs": 10, "batch_size": 16},
}


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """evaluation.json as the engine wrote it for an iris run and a Boston run: ``{"iris": bytes, "boston": bytes}``."""
    root = tmp_path_factory.mktemp("reports")
    found = {}
    for name, config in (("iris", IRIS), ("boston", tiny(epochs=3))):
        result = run_experiment(load_config(config), trainings_root=root / "trainings", cache_dir=root / "cache")
        assert result.succeeded, result.error
        assert result.path is not None
        found[name] = (result.path / "evaluation.json").read_bytes()
    return found


def run_with(root, name, report, dataset="iris", owner=None):
    """A finished run in the index whose folder holds ``report`` (bytes) as its evaluation.json."""
    execution = make_run(root, name, dataset=dataset, owner=owner)
    if report is not None:
        (root / dataset / "executions" / name / "evaluation.json").write_bytes(report)
        from experiments.index.sync import sync_trainings

        sync_trainings(root)
        execution.refresh_from_db()
    return execution


@pytest.fixture
def iris_run(root, owner, reports):
    return run_with(root, "06-16-31__08-04-2019", reports["iris"], owner=owner)


@pytest.fixture
def boston_run(root, owner, reports):
    return run_with(root, "07-00-00__08-04-2019", reports["boston"], dataset="boston_housing", owner=owner)


def panel(client, execution):
    response = client.get(f"/executions/{execution.pk}/evaluation.json")
    assert response.status_code == 200
    return response.json()


# --- the execution page's panel ------------------------------------------------------------------


def test_the_panel_serves_the_report_and_the_page_carries_the_panel(owner_client, iris_run):
    data = panel(owner_client, iris_run)
    assert data["available"] is True
    assert data["live"] is False
    section = data["report"]["classification"]
    assert sum(map(sum, section["confusion_matrix"]["counts"])) == 30
    assert section["classes"] == ["setosa", "versicolor", "virginica"]
    assert iris_run.evaluation.keys() == {"accuracy", "macro_f1", "roc_auc"}  # sync indexed the headline
    page = owner_client.get(permalink(iris_run)).content.decode()
    assert 'id="evaluation"' in page
    assert f'data-url="/executions/{iris_run.pk}/evaluation.json"' in page
    assert "js/evaluation." in page


def test_the_panel_needs_a_login(outsider, iris_run):
    response = outsider.get(f"/executions/{iris_run.pk}/evaluation.json")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_run_without_a_report_says_how_to_make_one(root, owner_client, owner):
    execution = run_with(root, "06-16-31__08-04-2019", None, owner=owner)
    data = panel(owner_client, execution)
    assert data["available"] is False
    assert "python manage.py evaluate" in data["reason"]


def test_a_queued_run_says_the_report_comes_when_it_ends(owner_client, iris_run):
    queued = Execution.objects.create(experiment=iris_run.experiment, status=Execution.Status.QUEUED)
    data = panel(owner_client, queued)
    assert data == {"available": False, "live": True, "reason": data["reason"]}
    assert "written when it ends" in data["reason"]


def test_nan_in_a_report_is_served_as_null_so_the_browser_can_parse_it(root, owner_client, owner):
    report = b'{"task": "regression", "headline": {"r2": NaN, "rmse": Infinity}, "not_computed": []}'
    execution = run_with(root, "06-16-31__08-04-2019", report, owner=owner)
    response = owner_client.get(f"/executions/{execution.pk}/evaluation.json")
    assert b"NaN" not in response.content
    assert b"Infinity" not in response.content
    assert json.loads(response.content)["report"]["headline"] == {"r2": None, "rmse": None}


def test_an_oversized_or_outside_report_is_not_read(root, owner_client, owner, tmp_path):
    execution = run_with(root, "06-16-31__08-04-2019", b"{}", owner=owner)
    report = root / "iris" / "executions" / "06-16-31__08-04-2019" / "evaluation.json"
    report.write_bytes(b'{"pad": "' + b"x" * MAX_BYTES + b'"}')
    data = panel(owner_client, execution)
    assert data["available"] is False
    assert f"at most {MAX_BYTES:,} are read" in data["reason"]
    secret = tmp_path / "secret.json"
    secret.write_text('{"task": "the secret"}')
    report.unlink()
    os.symlink(secret, report)
    data = panel(owner_client, execution)
    assert data["available"] is False
    assert "the secret" not in json.dumps(data)


# --- share links ----------------------------------------------------------------------------------


def shared(execution, owner, **fields):
    return ShareLink.objects.create(kind=ShareLink.Kind.EXECUTION, execution=execution, created_by=owner, **fields)


def test_a_share_link_shows_its_run_report_and_nothing_else(iris_run, boston_run, owner):
    link = shared(iris_run, owner)
    visitor = Client()
    page = visitor.get(f"/s/{link.token}/").content.decode()
    assert f'data-url="/s/{link.token}/evaluation.json"' in page
    data = visitor.get(f"/s/{link.token}/evaluation.json").json()
    assert data["available"]
    assert data["report"]["task"] == "classification"
    assert visitor.get(f"/executions/{boston_run.pk}/evaluation.json").status_code == 302  # still asks for a login
    assert visitor.get(f"/api/executions/{iris_run.pk}/evaluation").status_code == 401


def test_a_revoked_or_unknown_link_shows_no_report(iris_run, owner):
    from django.utils import timezone

    link = shared(iris_run, owner, revoked_at=timezone.now())
    assert Client().get(f"/s/{link.token}/evaluation.json").status_code == 404
    assert Client().get("/s/not-a-token/evaluation.json").status_code == 404


def test_a_comparison_link_shows_its_runs_matrices_and_plots(iris_run, boston_run, owner):
    link = ShareLink.objects.create(kind=ShareLink.Kind.COMPARISON, runs=[iris_run.pk, boston_run.pk], created_by=owner)
    visitor = Client()
    page = visitor.get(f"/s/{link.token}/").content.decode()
    assert f'data-url="/s/{link.token}/evaluation.json"' in page
    assert 'id="compare-evaluation"' in page
    runs = visitor.get(f"/s/{link.token}/evaluation.json").json()["runs"]
    assert [run["id"] for run in runs] == [iris_run.pk, boston_run.pk]


# --- the compare page -----------------------------------------------------------------------------


def test_compare_gives_each_run_its_matrix_or_points_and_its_headline(root, owner_client, owner, iris_run, boston_run):
    bare = run_with(root, "08-00-00__08-04-2019", None, owner=owner)
    page = owner_client.get(f"/compare/?runs={iris_run.pk},{boston_run.pk},{bare.pk}").content.decode()
    assert f'data-url="/compare/evaluation.json?runs={iris_run.pk},{boston_run.pk},{bare.pk}"' in page
    response = owner_client.get(f"/compare/evaluation.json?runs={iris_run.pk},{boston_run.pk},{bare.pk}")
    iris, boston, missing = response.json()["runs"]
    assert iris["task"] == "classification"
    assert len(iris["confusion"]["counts"]) == 3
    assert iris["headline"] == iris_run.evaluation
    assert set(iris["headline"]) == {"accuracy", "macro_f1", "roc_auc"}
    assert boston["task"] == "regression"
    assert boston["points"]["shown"] == boston["points"]["total"] == 101
    assert set(boston["headline"]) == {"r2", "rmse"}
    assert "confusion" not in missing
    assert "points" not in missing
    assert "manage.py evaluate" in missing["reason"]
    assert Client().get(f"/compare/evaluation.json?runs={iris_run.pk}").status_code == 302


# --- the API --------------------------------------------------------------------------------------


def test_the_api_gives_the_whole_report(owner_client, iris_run):
    response = owner_client.get(f"/api/executions/{iris_run.pk}/evaluation")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == iris_run.pk
    assert body["task"] == "classification"
    assert body["split"] == "test"
    assert len(body["classification"]["per_class"]) == 3
    assert body["model"]["params"]["total"] == 131
    assert body["headline"] == pytest.approx(iris_run.evaluation)


def test_the_api_is_404_with_the_reason_when_there_is_no_report(root, owner_client, owner):
    execution = run_with(root, "06-16-31__08-04-2019", None, owner=owner)
    response = owner_client.get(f"/api/executions/{execution.pk}/evaluation")
    assert response.status_code == 404
    assert "manage.py evaluate" in response.json()["detail"]
    response = owner_client.get("/api/executions/999999/evaluation")
    assert response.status_code == 404
    assert response.json() == {"detail": "there is no execution 999999"}
    (root / "iris" / "executions" / "06-16-31__08-04-2019" / "evaluation.json").write_text('{"task": ["x"]}')
    response = owner_client.get(f"/api/executions/{execution.pk}/evaluation")
    assert response.status_code == 404
    assert response.json()["detail"].startswith("evaluation.json is not a report Gymnos can read: task:")


def test_the_openapi_schema_documents_the_operation_and_its_errors(owner_client):
    schema = owner_client.get("/api/openapi.json").json()
    operation = schema["paths"]["/api/executions/{execution_id}/evaluation"]["get"]
    assert set(operation["responses"]) == {"200", "401", "404", "422"}
    assert "404 when the execution does not exist" in operation["description"]
