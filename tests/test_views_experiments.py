"""The experiments list and an experiment's table: counts, sorting, filters, pagination, access."""

import datetime as dt
import html

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
    assert "boston_housing" in page
    assert "mnist" in page
    assert "2 succeeded" in page
    assert "1 failed" in page
    assert "1" in page
    assert "val_loss" in page


def list_rows(page):
    """The experiments list's rows: (name, best value cell's text), in order."""
    import re

    cells = re.findall(r"<strong>([^<]+)</strong></a></td>.*?<td class=\"num\">([^<]*)<span", page, re.S)
    return [(name, best.strip()) for name, best in cells]


def test_the_list_shows_each_experiment_its_own_best_and_newest_first_in_the_same_queries_for_more_experiments(
    owner_client,
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def experiment(name, val_losses, hours_ago, archived_best=None):
        runs = add_runs(len(val_losses), experiment=name)
        for run, value in zip(runs, val_losses, strict=True):
            Execution.objects.filter(pk=run.pk).update(
                best_val_loss=value, started_at=timezone.now() - dt.timedelta(hours=hours_ago, minutes=run.pk)
            )
        if archived_best is not None:  # an archived run's better value is not the experiment's best
            Execution.objects.filter(pk=runs[0].pk).update(best_val_loss=archived_best, archived=True)

    experiment("alpha", [0.5, 0.25, 0.75], hours_ago=5)
    experiment("beta", [2.0, 1.5], hours_ago=1, archived_best=0.001)
    with CaptureQueriesContext(connection) as two:
        page = owner_client.get("/").content.decode()
    assert list_rows(page) == [("beta", "1.5"), ("alpha", "0.25")]  # newest run first, each its own best
    for index in range(4):
        experiment(f"more-{index}", [float(index + 3)], hours_ago=10 + index)
    with CaptureQueriesContext(connection) as six:
        page = owner_client.get("/").content.decode()
    assert [name for name, _ in list_rows(page)] == ["beta", "alpha", "more-0", "more-1", "more-2", "more-3"]
    assert len(six) == len(two)  # not one more query per experiment


def test_a_new_team_sees_how_to_launch_a_first_run(owner_client):
    page = owner_client.get("/").content.decode()
    assert "No runs yet" in page
    assert "python manage.py train examples/boston_housing.json" in page
    assert 'href="/runs/new/"' in page


@pytest.mark.parametrize("url", ["/", "/experiments/mnist/"])
def test_an_outsider_is_sent_to_log_in(outsider, url):
    add_runs(1)
    response = outsider.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"


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
    assert len(rows_in(first)) == 25
    assert rows_in(first)[0] == "run-000"
    assert "Page 1 of 2" in first
    assert "per_page=25&amp;sort=metrics.val_loss&amp;order=asc&amp;page=2" in first
    second = owner_client.get("/experiments/mnist/", {"sort": "val_loss", "per_page": 25, "page": 2}).content.decode()
    assert rows_in(second) == ["run-025", "run-026", "run-027", "run-028", "run-029"]


def test_rows_show_stage_times_hardware_tags_and_test_metrics(owner_client, trained):
    page = owner_client.get("/experiments/boston_housing/").content.decode()
    assert "Test CPU 9000 (8 cores)" in page
    assert "2.3 s" in page  # fit
    assert "test_loss" in page
    assert "9.5" in page
    assert f'name="runs" value="{trained.pk}"' in page
    assert "Compare selected" in page


def test_a_gpu_name_that_is_not_text_still_shows(owner_client):
    # Any JSON may sit in a folder's metrics.json: a number as a GPU name must not break the table.
    add_runs(1, hardware={"cpu": {"model": "Test CPU"}, "gpus": [{"name": 7}]})
    page = owner_client.get("/experiments/mnist/").content.decode()
    assert "Test CPU + 7" in page


def test_an_empty_experiment_says_how_to_launch(owner_client):
    Experiment.objects.create(name="iris")
    page = owner_client.get("/experiments/iris/").content.decode()
    assert "No runs in iris yet" in page
    assert "Launch one" in page


# --- params columns, the query box, the column chooser, the "What works" data (issue 12) ---------


def add_grid(experiment="grid"):
    """Runs whose batch size and optimizer vary and whose dataset does not; run-000 lacks a test_loss."""
    exp, _ = Experiment.objects.get_or_create(name=experiment)
    start = timezone.now() - dt.timedelta(days=1)
    for i, (batch, optimizer) in enumerate([(32, "adam"), (64, "adam"), (64, "sgd"), (128, "sgd")]):
        execution = Execution(
            experiment=exp,
            folder_name=f"run-{i:03d}",
            status=Execution.Status.SUCCEEDED,
            started_at=start + dt.timedelta(minutes=i),
            params={
                "dataset.name": "boston_housing",
                "training.batch_size": batch,
                "model.compilation.optimizer.type": optimizer,
            },  # fmt: skip
            size_bytes=(i + 1) * 1024 * 1024,
            tags=["baseline"] if i % 2 else [],
        )
        execution.set_metrics({"val_loss": [10.0 - i], **({"test_loss": [5.0 - i]} if i else {})})
        execution.save()
    return exp


def headers(page):
    import re

    return re.findall(r'data-column="([^"]+)"', page)


def test_the_table_shows_the_params_that_differ_and_not_those_that_do_not(owner_client):
    add_grid()
    page = owner_client.get("/experiments/grid/").content.decode()
    columns = headers(page)
    assert "params.training.batch_size" in columns
    assert "params.model.compilation.optimizer.type" in columns
    assert "params.dataset.name" not in columns
    assert columns.index("params.model.compilation.optimizer.type") < columns.index("metrics.val_loss")
    assert ">sgd</td>" in page
    assert ">128</td>" in page


def test_the_default_columns_leave_system_figures_evaluation_and_size_to_the_chooser(owner_client):
    experiment = add_grid()
    system = {"interval_s": 5, "samples": 3, "duration_s": 12.5, "peak_memory_mb": 812.0}
    Execution.objects.filter(experiment=experiment).update(system=system, evaluation={"accuracy": 0.9})
    columns = headers(owner_client.get("/experiments/grid/").content.decode())
    assert columns == [
        "started", "duration", "epochs",
        "params.model.compilation.optimizer.type", "params.training.batch_size",
        "metrics.val_loss", "metrics.best.val_loss", "metrics.test_loss",
    ]  # fmt: skip
    page = owner_client.get("/experiments/grid/").content.decode()
    for name in ("system.interval_s", "system.samples", "system.peak_memory_mb", "evaluation.accuracy", "size"):
        assert f'name="col" value="{name}"' in page  # one tick away


def test_the_column_chooser_lists_every_column_and_shows_the_chosen_ones(owner_client):
    add_grid()
    page = owner_client.get("/experiments/grid/").content.decode()
    for name in ("params.dataset.name", "params.training.batch_size", "metrics.val_loss", "metrics.test_loss", "size"):
        assert f'name="col" value="{name}"' in page
    chosen = owner_client.get("/experiments/grid/", {"cols": "params.dataset.name,metrics.test_loss"}).content.decode()
    assert headers(chosen) == ["started", "duration", "epochs", "params.dataset.name", "metrics.test_loss"]
    assert ">boston_housing</td>" in chosen
    repeated = owner_client.get("/experiments/grid/", {"col": ["size", "params.training.batch_size"]}).content.decode()
    assert headers(repeated)[3:] == ["size", "params.training.batch_size"]
    assert "cols=size%2Cparams.training.batch_size" in repeated  # the sort links keep the choice


def test_a_param_column_sorts_like_a_metric_column(owner_client):
    add_grid()
    page = owner_client.get("/experiments/grid/", {"sort": "params.training.batch_size", "order": "desc"})
    assert rows_in(page.content.decode()) == ["run-003", "run-002", "run-001", "run-000"]
    page = owner_client.get("/experiments/grid/", {"sort": "params.model.compilation.optimizer.type"}).content.decode()
    assert rows_in(page) == ["run-000", "run-001", "run-002", "run-003"]
    assert "sort=params.training.batch_size&amp;order=asc" in page  # its header: the first click sorts ascending


def test_the_query_box_narrows_the_table_and_its_address_is_a_link(owner_client):
    add_grid()
    query = 'params.training.batch_size >= 64 and params.model.compilation.optimizer.type = "sgd"'
    page = owner_client.get("/experiments/grid/", {"q": query}).content.decode()
    assert rows_in(page) == ["run-003", "run-002"]
    assert "2 runs matching the filter" in page
    assert (
        'value="params.training.batch_size &gt;= 64 and params.model.compilation.optimizer.type = &quot;sgd&quot;"'
        in page
    )
    page = owner_client.get("/experiments/grid/", {"q": "tags.baseline", "sort": "metrics.val_loss"}).content.decode()
    assert rows_in(page) == ["run-003", "run-001"]


def test_a_bad_query_is_a_message_with_its_column_and_an_empty_table_never_a_500(owner_client):
    add_grid()
    response = owner_client.get("/experiments/grid/", {"q": "params.training.batch_size = 64 and metrics.val_loss < "})
    page = response.content.decode()
    assert response.status_code == 200
    assert rows_in(page) == []
    assert "col 55: expected a value after &#x27;&lt;&#x27;" in page
    assert "No runs: the query has a problem" in page
    assert "\n" + " " * 54 + "^</pre>" in page  # a caret under the column
    for query in ["'unterminated", "x" * 2000, "not " * 300 + "a", "((((", "status = 'nope'", "a = 1)"]:
        response = owner_client.get("/experiments/grid/", {"q": query})
        assert response.status_code == 200
        assert "This query cannot run" in response.content.decode()
    # A NUL byte is refused before any view reads the URL (gymnos_web.errors.NulInURLMiddleware), saying so.
    response = owner_client.get("/experiments/grid/", {"q": "\x00"})
    assert response.status_code == 400
    assert "NUL byte" in response.content.decode()


def test_archived_runs_show_only_when_asked(owner_client):
    add_grid()
    Execution.objects.filter(folder_name="run-003").update(archived=True)
    assert "run-003" not in rows_in(owner_client.get("/experiments/grid/").content.decode())
    page = owner_client.get("/experiments/grid/", {"archived": "1"}).content.decode()
    assert rows_in(page)[0] == "run-003"
    assert "archived ones included" in page
    assert rows_in(owner_client.get("/experiments/grid/", {"q": "archived"}).content.decode()) == ["run-003"]


def test_a_filtered_table_is_counted_after_it_loads_up_to_a_limit(owner_client, monkeypatch):
    from experiments.search import selection, views

    add_runs(30)
    page = owner_client.get("/experiments/mnist/", {"q": "metrics.val_loss > 0", "per_page": 25}).content.decode()
    assert len(rows_in(page)) == 25
    assert "25 or more runs match the filter" in page
    assert "Page 1<" in page
    assert 'data-count-url="/experiments/mnist/count.json?q=metrics.val_loss+%3E+0' in page
    assert owner_client.get("/experiments/mnist/count.json", {"q": "metrics.val_loss > 0"}).json() == {
        "count": 30,
        "more": False,
        "limit": 1000,
    }
    monkeypatch.setattr(selection, "COUNT_LIMIT", 5)
    monkeypatch.setattr(views, "COUNT_LIMIT", 5)
    assert owner_client.get("/experiments/mnist/count.json", {"tag": "odd"}).json() == {
        "count": 5,
        "more": True,
        "limit": 5,
    }
    # A page that is not full counts itself: no request needed.
    page = owner_client.get("/experiments/mnist/", {"q": "metrics.val_loss > 26", "per_page": 25}).content.decode()
    assert "4 runs matching the filter" in page
    assert "data-count-url" not in page
    second = owner_client.get("/experiments/mnist/", {"q": "metrics.val_loss > 0", "per_page": 25, "page": 2})
    assert rows_in(second.content.decode()) == [f"run-{i:03d}" for i in (4, 3, 2, 1, 0)]
    assert "30 runs matching the filter" in second.content.decode()
    beyond = owner_client.get("/experiments/mnist/", {"q": "metrics.val_loss > 0", "page": 9}).content.decode()
    assert "No more runs" in beyond
    bad = owner_client.get("/experiments/mnist/count.json", {"q": "metrics.val_loss >"})
    assert bad.status_code == 400
    assert bad.json()["column"] == 19


def test_the_last_page_of_a_sorted_table_is_its_end(owner_client):
    add_runs(60)
    Execution.objects.filter(folder_name="run-007").update(summary={})  # no val_loss: sorted last
    page = owner_client.get("/experiments/mnist/", {"sort": "metrics.val_loss", "per_page": 25, "page": 3})
    assert rows_in(page.content.decode()) == [f"run-{i:03d}" for i in range(51, 60)] + ["run-007"]
    first = owner_client.get("/experiments/mnist/", {"sort": "metrics.val_loss", "per_page": 25}).content.decode()
    assert "Page 1 of 3" in first
    assert 'id="last-page"' in first


def test_the_list_counts_only_the_runs_tables_show(owner_client, owner):
    add_runs(4)
    Execution.objects.filter(folder_name="run-000").update(archived=True)
    Execution.objects.delete_run(Execution.objects.get(folder_name="run-001").pk, by=owner)
    page = owner_client.get("/").content.decode()
    assert "2 succeeded" in page
    assert "deleted" not in page
    Experiment.objects.filter(name="mnist").update(archived=True)
    assert "mnist" not in owner_client.get("/").content.decode()
    assert "mnist" in owner_client.get("/", {"archived": "1"}).content.decode()


def test_the_what_works_data_has_each_run_s_params_the_metric_and_groups(owner_client):
    add_grid()
    url = "/experiments/grid/explore.json"
    params = {
        "cols": "params.training.batch_size,params.model.compilation.optimizer.type",
        "metric": "metrics.val_loss",
    }
    data = owner_client.get(url, {**params, "group": "params.model.compilation.optimizer.type"}).json()
    assert [run[1] for run in data["runs"]] == ["run-003", "run-002", "run-001", "run-000"]
    assert data["runs"][0][2] == "/experiments/grid/executions/run-003/"
    assert [axis["values"] for axis in data["axes"]] == [[128, 64, 64, 32], ["sgd", "sgd", "adam", "adam"]]
    assert data["metric"] == {"name": "metrics.val_loss", "label": "val_loss", "values": [7.0, 8.0, 9.0, 10.0]}
    assert data["groups"]["rows"] == [
        {"value": "adam", "runs": 2, "mean": 9.5, "min": 9.0, "max": 10.0},
        {"value": "sgd", "runs": 2, "mean": 7.5, "min": 7.0, "max": 8.0},
    ]
    narrowed = owner_client.get(url, {**params, "q": "params.training.batch_size = 64"}).json()
    assert [run[1] for run in narrowed["runs"]] == ["run-002", "run-001"]
    assert narrowed["truncated"] is False
    bad = owner_client.get(url, {"q": "metrics.val_loss <"})
    assert bad.status_code == 400
    assert bad.json() == {"error": "col 19: expected a value after '<'", "column": 19}
    assert owner_client.get("/experiments/nope/explore.json").status_code == 404


def test_what_works_over_more_runs_than_it_draws_counts_every_run_and_says_its_figures_are_a_sample(
    owner_client, monkeypatch
):
    from experiments.search import views

    add_grid()  # run-000 32 adam 10, run-001 64 adam 9, run-002 64 sgd 8, run-003 128 sgd 7 (newest last)
    Execution.objects.create(experiment=Experiment.objects.get(name="grid"), folder_name="run-old", status="failed")
    monkeypatch.setattr(views, "LIMIT", 2)  # draw the newest two of the five runs
    url = "/experiments/grid/explore.json"
    params = {"metric": "metrics.val_loss", "group": "params.model.compilation.optimizer.type"}
    data = owner_client.get(url, params).json()
    assert data["truncated"] is True
    assert data["shown"] == 2
    assert data["groups"]["sampled"] is True
    rows = {row["value"]: row for row in data["groups"]["rows"]}
    # Every run counted, the one without an optimizer too; the figures of the two drawn runs only (both sgd).
    assert {value: row["runs"] for value, row in rows.items()} == {"adam": 2, "sgd": 2, None: 1}
    assert rows["sgd"]["mean"] == 7.5
    assert rows["adam"]["mean"] is None
    by_batch = owner_client.get(url, {**params, "group": "params.training.batch_size"}).json()["groups"]["rows"]
    assert [(row["value"], row["runs"]) for row in by_batch] == [(32, 1), (64, 2), (128, 1), (None, 1)]
    narrowed = owner_client.get(url, {**params, "q": "params.training.batch_size >= 64"}).json()["groups"]
    assert [(row["value"], row["runs"]) for row in narrowed["rows"]] == [("adam", 1), ("sgd", 2)]
    failed = owner_client.get(url, {**params, "status": "failed"}).json()["groups"]
    assert [(row["value"], row["runs"]) for row in failed["rows"]] == [(None, 1)]


def test_odd_names_in_a_run_do_not_break_the_table(owner_client):
    exp = Experiment.objects.create(name="odd")
    execution = Execution(
        experiment=exp, folder_name="run-000", status="succeeded", system={"x" * 300: 1, "cpu": "n/a"}
    )
    execution.set_metrics({"y" * 300: [1.0], "loss": [2.0]})
    execution.save()
    response = owner_client.get("/experiments/odd/")
    assert response.status_code == 200
    assert rows_in(response.content.decode()) == ["run-000"]
    chosen = owner_client.get("/experiments/odd/", {"cols": f"system.cpu,system.{'x' * 300}"}).content.decode()
    assert headers(chosen)[3:] == ["system.cpu"]  # a name no column can have is left out
    query = owner_client.get("/experiments/odd/", {"q": "system.cpu = 'n/a'"})  # text where a number is expected
    assert query.status_code == 200
    assert "system.cpu is a number" in html.unescape(query.content.decode())
