"""A run of a million epochs costs a page, the compare page and the API what a run of two thousand does.

The index keeps a chart copy beside each history (at most 2,000 points, each stretch's lowest and
highest value), and the pages and the API read only that copy and single values by epoch.
"""

import json
import tracemalloc

import pytest

from experiments import charts
from experiments.models import Execution, MetricHistory
from tests.folders import permalink

pytestmark = pytest.mark.django_db

MiB = 1 << 20
EPOCHS = 1_000_000  # GYMNOS_MAX_EPOCHS: the most a run may have


def measured(call):
    """``(result, peak bytes Python allocated)`` of ``call()``."""
    tracemalloc.start()
    try:
        return call(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def endless(trained):
    """The trained run (checkpoints at epochs 5, 10 and 15), given a million epochs of loss and val_loss."""
    loss: list[float | None] = [1.0 + (epoch % 1000) / 1000 for epoch in range(EPOCHS)]
    loss[654_321] = 99.0  # a spike the chart must keep
    val_loss: list[float | None] = [2.0 + epoch / EPOCHS for epoch in range(EPOCHS)]
    MetricHistory.objects.store({trained.pk: {"loss": loss, "val_loss": val_loss}})
    Execution.objects.filter(pk=trained.pk).update(epochs=EPOCHS)
    return trained


def test_one_page_view_of_a_million_epoch_run_reads_a_bounded_amount(owner_client, endless):
    owner_client.get(permalink(endless))  # the first request's start-up is not the histories' cost
    response, peak = measured(lambda: owner_client.get(f"/executions/{endless.pk}/data.json"))
    assert peak < 8 * MiB  # 97 MB before: every value of every history, as Python floats
    assert len(response.content) < 512 * 1024
    loss = response.json()["charts"]["loss"]
    assert len(loss["train"]["x"]) <= 2000
    assert loss["train"]["points"] == EPOCHS
    assert max(loss["train"]["y"]) == 99.0  # the spike is kept
    assert 654_322 in loss["train"]["x"]
    # The checkpoints sit on the exact value of the long history, read by epoch.
    data = response.json()
    assert [(m["x"], m["y"]) for m in data["checkpoints"]] == [(5, 2.000004), (10, 2.000009), (15, 2.000014)]
    # The wall-time axis names only the epochs drawn.
    seconds = data["epoch_seconds"]["seconds"]
    assert isinstance(seconds, dict)
    assert len(seconds) <= 4000
    assert "654321" in seconds  # the spike's epoch, counted from 0 as the page looks it up
    assert "4" in seconds  # a checkpoint's epoch


def test_the_compare_data_of_long_runs_is_bounded(owner_client, endless):
    owner_client.get(f"/compare/?runs={endless.pk}")
    response, peak = measured(lambda: owner_client.get(f"/compare/data.json?runs={endless.pk}"))
    assert peak < 8 * MiB
    (loss,) = response.json()["metrics"]["loss"]
    assert len(loss["y"]) <= 2000
    assert loss["points"] == EPOCHS
    # The CSV export still gives every value, read one history at a time.
    export = owner_client.get(f"/compare/export.csv?runs={endless.pk}")
    rows = iter(export.streaming_content)
    assert [next(rows) for _ in range(3)][1:] == [
        f"{endless.pk},boston_housing,06-16-31__08-04-2019,Boston Housing,loss,1,1.0\r\n".encode(),
        f"{endless.pk},boston_housing,06-16-31__08-04-2019,Boston Housing,loss,2,1.001\r\n".encode(),
    ]
    export.close()


def test_the_api_gives_a_long_history_as_its_chart_with_the_epochs(owner_client, endless):
    response, peak = measured(lambda: owner_client.get(f"/api/executions/{endless.pk}/metrics"))
    body = response.json()
    assert peak < 8 * MiB
    assert len(body["metrics"]["loss"]) == len(body["epochs"]["loss"]) <= 2000
    assert body["points"]["loss"] == body["points"]["val_loss"] == EPOCHS
    assert "mean_absolute_error" not in body["epochs"]  # 15 values: given whole
    assert 99.0 in body["metrics"]["loss"]


def test_the_api_gives_a_short_history_whole(owner_client, trained):
    body = owner_client.get(f"/api/executions/{trained.pk}/metrics").json()
    assert body["metrics"]["loss"] == [100.0 / (epoch + 1) for epoch in range(15)]
    assert body["epochs"] == {}
    assert body["points"]["loss"] == 15


def test_values_by_epoch_are_read_in_the_database(endless):
    found = MetricHistory.objects.values_at(endless.pk, "loss", [1, 654_322, EPOCHS, EPOCHS + 1, 0])
    assert found == {1: 1.0, 654_322: 99.0, EPOCHS: 1.999}


def test_every_write_keeps_the_chart_copy(trained):
    Execution.objects.record_epoch(trained.pk, {"loss": [3.0, 2.0, 1.0]})
    row = MetricHistory.objects.get(execution=trained, name="loss")
    assert row.length == 3
    assert row.chart == {"x": [1, 2, 3], "y": [3.0, 2.0, 1.0]}
    assert charts.stored([trained.pk])[trained.pk]["loss"] == {"x": [1, 2, 3], "y": [3.0, 2.0, 1.0], "points": 3}
    assert json.loads(json.dumps(row.chart)) == row.chart
