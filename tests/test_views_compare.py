"""Compare: the selection in the URL, every metric overlaid, final/test metrics, config diff, CSV."""

import csv
import io

import pytest

from experiments.models import MetricHistory
from tests.folders import make_run
from tests.helpers import seed_config

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair(root, owner):
    faster = seed_config()
    faster["training"]["batch_size"] = 64
    faster["model"]["compilation"]["optimizer"] = "sgd"
    faster["experiment"]["tags"] = ["fast"]
    faster["model"]["network"][0]["kernel_initializer"] = "he_normal"
    return make_run(root, "06-16-31__08-04-2019", owner=owner), make_run(
        root, "06-39-51__10-04-2019", config=faster, owner=owner
    )


def text(response):
    return b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()


def test_the_page_lists_the_runs_with_final_and_test_metrics(teammate_client, pair):
    a, b = pair
    page = text(teammate_client.get("/compare/", {"runs": f"{a.pk},{b.pk}"}))
    assert "Comparing 2 runs" in page
    assert "boston_housing/06-16-31__08-04-2019" in page
    assert "boston_housing/06-39-51__10-04-2019" in page
    assert "test_mean_absolute_error" in page
    assert "9.5" in page
    assert "8" in page
    assert f"/compare/export.csv?runs={a.pk},{b.pk}" in page


def test_the_config_diff_shows_only_the_keys_that_differ(teammate_client, pair):
    a, b = pair
    page = text(teammate_client.get("/compare/", {"runs": f"{a.pk},{b.pk}"}))
    diff = page[page.index("Config differences") :]
    assert "training.batch_size" in diff
    assert "<td>32</td><td>64</td>" in diff
    assert "model.compilation.optimizer" in diff
    assert "&quot;adam&quot;" in diff
    assert "&quot;sgd&quot;" in diff
    assert "experiment.tags" in diff
    assert "&quot;fast&quot;" in diff
    assert "model.network[0].kernel_initializer" in diff
    assert "not set" in diff
    assert "training.epochs" not in diff
    assert "dataset.name" not in diff


def test_an_optimizer_given_by_name_and_the_same_given_as_an_object_do_not_differ(teammate_client, root, owner):
    spelt_out = seed_config()
    spelt_out["model"]["compilation"]["optimizer"] = {"type": "adam"}
    spelt_out["training"]["callbacks"] = [{"type": "early_stopping", "patience": 0}]  # 0 is the default
    bare = seed_config()
    bare["training"]["callbacks"] = [{"type": "early_stopping"}]
    a = make_run(root, "06-16-31__08-04-2019", config=bare, owner=owner)
    b = make_run(root, "06-39-51__10-04-2019", config=spelt_out, owner=owner)
    page = text(teammate_client.get("/compare/", {"runs": f"{a.pk},{b.pk}"}))
    diff = page[page.index("Config differences") :]
    assert "optimizer" not in diff
    assert "patience" not in diff


def test_repeated_runs_parameters_work_too_and_missing_runs_are_named(teammate_client, pair):
    a, b = pair
    page = text(teammate_client.get(f"/compare/?runs={a.pk}&runs={b.pk}&runs=999999"))
    assert "Comparing 2 runs" in page
    assert "999999 no longer exists" in page


def test_nothing_selected_explains_how_to_compare(teammate_client):
    page = text(teammate_client.get("/compare/"))
    assert "Nothing to compare yet" in page
    assert "Compare selected" in page


def test_the_data_overlays_every_metric_across_runs(teammate_client, pair):
    a, b = pair
    data = teammate_client.get("/compare/data.json", {"runs": f"{b.pk},{a.pk}"}).json()
    assert [run["id"] for run in data["runs"]] == [b.pk, a.pk]
    assert list(data["metrics"]) == ["loss", "val_loss", "mean_absolute_error", "val_mean_absolute_error"]
    assert [trace["run"] for trace in data["metrics"]["val_loss"]] == [b.pk, a.pk]
    assert data["metrics"]["loss"][0]["y"][0] == 100.0


def test_the_chart_data_is_downsampled_but_the_csv_is_full_resolution(teammate_client, pair):
    a, b = pair
    MetricHistory.objects.store({a.pk: {"loss": [float(i) for i in range(10_000)]}})
    data = teammate_client.get("/compare/data.json", {"runs": f"{a.pk},{b.pk}"}).json()
    assert len(data["metrics"]["loss"][0]["y"]) <= 2000
    rows = list(
        csv.DictReader(io.StringIO(text(teammate_client.get("/compare/export.csv", {"runs": f"{a.pk},{b.pk}"}))))
    )
    loss_a = [row for row in rows if row["run_id"] == str(a.pk) and row["metric"] == "loss"]
    assert len(loss_a) == 10_000
    assert loss_a[-1]["epoch"] == "10000"
    assert float(loss_a[-1]["value"]) == 9999.0
    assert {row["metric"] for row in rows if row["run_id"] == str(b.pk)} >= {"loss", "val_loss", "test_loss"}


def test_the_csv_is_an_attachment(teammate_client, pair):
    a, _ = pair
    response = teammate_client.get("/compare/export.csv", {"runs": a.pk})
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="comparison.csv"' in response["Content-Disposition"]
    assert text(response).splitlines()[0] == "run_id,experiment,execution,title,metric,epoch,value"


def test_an_outsider_is_sent_to_log_in(outsider, pair):
    a, b = pair
    for url in ("/compare/", "/compare/data.json", "/compare/export.csv"):
        response = outsider.get(url, {"runs": f"{a.pk},{b.pk}"})
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_posting_is_405(owner_client, pair):
    for url in ("/compare/", "/compare/data.json", "/compare/export.csv"):
        assert owner_client.post(url).status_code == 405
