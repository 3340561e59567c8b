"""The experiments list and an experiment's table: counts, sorting, filters, pagination, access."""

import datetime as dt

import pytest
from django.utils import timezone

from experiments.models import Execution, Experiment

pytestmark = pytest.mark.django_db


def add_runs(count, experiment="mnist", **fields):
    """Index rows without folders (the table reads only the index), val_loss 1..count."""
    exp, _ = Experiment.objects.get_or_create(name=experiment)
    start = timezone.now() - dt.timedelta(days=1)
    runs = []
    for i in range(count):
        execution = Execution(
            experiment=exp,
            folder_name=f"run-{i:03d}",
            status=Execution.Status.SUCCEEDED,
            started_at=start + dt.timedelta(minutes=i),
            finished_at=start + dt.timedelta(minutes=i, seconds=30 + i),
            tags=["even"] if i % 2 == 0 else ["odd"],
            epochs=3,
            **fields,
        )
        execution.set_metrics(
            {
                "loss": [3.0, 2.0, float(count - i)],
                "val_loss": [4.0, 3.0, float(i + 1)],
                "val_accuracy": [0.1, 0.2, i / 100],
            }
        )
        runs.append(execution)
    Execution.objects.bulk_create(runs)
    return list(Execution.objects.filter(experiment=exp).order_by("folder_name"))


def rows_in(page):
    """The run names in the table, in order."""
    import re

    return re.findall(r"<strong>(run-\d+)</strong>", page)


def test_the_list_shows_each_experiment_with_counts_last_run_and_best_val_loss(owner_client, trained):
    add_runs(3)
    Execution.objects.filter(folder_name="run-000").update(status="failed")
    page = owner_client.get("/").content.decode()
    assert "boston_housing" in page and "mnist" in page
    assert "2 succeeded" in page and "1 failed" in page
    assert "1" in page and "val_loss" in page  # mnist's best val_loss is 1.0


def test_a_new_team_sees_how_to_launch_a_first_run(owner_client):
    page = owner_client.get("/").content.decode()
    assert "No runs yet" in page and "python manage.py train examples/boston_housing.json" in page
    assert 'href="/runs/new/"' in page


@pytest.mark.parametrize("url", ["/", "/experiments/mnist/"])
def test_an_outsider_is_sent_to_log_in(outsider, url):
    add_runs(1)
    response = outsider.get(url)
    assert response.status_code == 302 and response["Location"] == f"/accounts/login/?next={url}"


@pytest.mark.parametrize("url", ["/", "/experiments/mnist/"])
def test_posting_to_a_list_is_405(teammate_client, url):
    add_runs(1)
    assert teammate_client.post(url).status_code == 405


def test_a_teammate_sees_the_same_table(teammate_client):
    add_runs(3)
    assert rows_in(teammate_client.get("/experiments/mnist/").content.decode()) == ["run-002", "run-001", "run-000"]


def test_an_unknown_experiment_is_404(teammate_client):
    assert teammate_client.get("/experiments/nope/").status_code == 404


def test_the_table_sorts_by_val_loss_best_first_and_reverses(owner_client):
    add_runs(5)
    page = owner_client.get("/experiments/mnist/", {"sort": "val_loss"}).content.decode()
    assert rows_in(page) == ["run-000", "run-001", "run-002", "run-003", "run-004"]
    page = owner_client.get("/experiments/mnist/", {"sort": "val_loss", "order": "desc"}).content.decode()
    assert rows_in(page) == ["run-004", "run-003", "run-002", "run-001", "run-000"]


def test_a_metric_where_higher_is_better_sorts_highest_first(owner_client):
    add_runs(4)
    page = owner_client.get("/experiments/mnist/", {"sort": "val_accuracy"}).content.decode()
    assert rows_in(page) == ["run-003", "run-002", "run-001", "run-000"]


def test_it_sorts_by_a_json_only_metric_and_by_duration(owner_client):
    add_runs(4)
    assert rows_in(owner_client.get("/experiments/mnist/", {"sort": "loss"}).content.decode()) == [
        "run-003",
        "run-002",
        "run-001",
        "run-000",
    ]
    assert (
        rows_in(owner_client.get("/experiments/mnist/", {"sort": "duration", "order": "asc"}).content.decode())[0]
        == "run-000"
    )


def test_every_metric_column_header_is_a_sort_link(owner_client):
    add_runs(2)
    page = owner_client.get("/experiments/mnist/").content.decode()
    for key in (
        "sort=metrics.loss",
        "sort=metrics.val_loss",
        "sort=metrics.val_accuracy",
        "sort=metrics.best.val_loss",
        "sort=duration",
        "sort=epochs",
    ):
        assert key in page


def test_it_filters_by_status_and_by_tag(owner_client):
    add_runs(6)
    Execution.objects.filter(folder_name__in=["run-001", "run-002"]).update(status="failed")
    assert rows_in(owner_client.get("/experiments/mnist/", {"status": "failed"}).content.decode()) == [
        "run-002",
        "run-001",
    ]
    assert rows_in(owner_client.get("/experiments/mnist/", {"tag": "odd"}).content.decode()) == [
        "run-005",
        "run-003",
        "run-001",
    ]
    assert rows_in(owner_client.get("/experiments/mnist/", {"tag": "odd", "status": "failed"}).content.decode()) == [
        "run-001"
    ]
    assert (
        rows_in(owner_client.get("/experiments/mnist/", {"tag": "ODD"}).content.decode()) == []
    )  # exact, on either database
    page = owner_client.get("/experiments/mnist/", {"tag": "nothing-has-this"}).content.decode()
    assert "No run matches this filter" in page


def test_it_pages_on_the_server_keeping_the_sort(owner_client):
    add_runs(30)
    first = owner_client.get("/experiments/mnist/", {"sort": "val_loss", "per_page": 25}).content.decode()
    assert len(rows_in(first)) == 25 and rows_in(first)[0] == "run-000"
    assert "Page 1 of 2" in first and "per_page=25&amp;sort=metrics.val_loss&amp;order=asc&amp;page=2" in first
    second = owner_client.get("/experiments/mnist/", {"sort": "val_loss", "per_page": 25, "page": 2}).content.decode()
    assert rows_in(second) == ["run-025", "run-026", "run-027", "run-028", "run-029"]


def test_rows_show_stage_times_hardware_tags_and_test_metrics(owner_client, trained):
    page = owner_client.get("/experiments/boston_housing/").content.decode()
    assert "Test CPU 9000 (8 cores)" in page
    assert "2.3 s" in page  # fit
    assert "test_loss" in page and "9.5" in page
    assert f'name="runs" value="{trained.pk}"' in page and "Compare selected" in page


def test_a_gpu_name_that_is_not_text_still_shows(owner_client):
    # Any JSON may sit in a folder's metrics.json: a number as a GPU name must not break the table.
    add_runs(1, hardware={"cpu": {"model": "Test CPU"}, "gpus": [{"name": 7}]})
    page = owner_client.get("/experiments/mnist/").content.decode()
    assert "Test CPU + 7" in page


def test_an_empty_experiment_says_how_to_launch(owner_client):
    Experiment.objects.create(name="iris")
    page = owner_client.get("/experiments/iris/").content.decode()
    assert "No runs in iris yet" in page and "Launch one" in page
