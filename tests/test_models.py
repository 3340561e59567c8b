"""The index's models: summaries, sorting by any metric, and one row per folder."""

import pytest
from django.db import IntegrityError, transaction

from experiments.models import Execution, Experiment, MetricHistory, higher_is_better, summarise


@pytest.mark.parametrize(
    "metric, higher",
    [
        ("loss", False),
        ("val_mean_absolute_error", False),
        ("accuracy", True),
        ("val_accuracy", True),
        ("test_auc", True),
        ("val_recall", True),
    ],
)
def test_it_knows_which_way_is_better(metric, higher):
    assert higher_is_better(metric) is higher


def test_the_summary_has_last_and_best_skipping_nulls():
    assert summarise([3.0, 1.0, None, 2.0], "val_loss") == {"last": 2.0, "best": 1.0, "best_epoch": 2}
    assert summarise([0.5, 0.9, 0.8, None], "val_accuracy") == {"last": 0.8, "best": 0.9, "best_epoch": 2}
    assert summarise([None, None], "loss") == {"last": None, "best": None, "best_epoch": None}
    assert summarise([], "loss") == {"last": None, "best": None, "best_epoch": None}


def test_set_metrics_fills_the_summary_and_the_sorting_columns():
    execution = Execution()
    execution.set_metrics({"loss": [4.0, 3.0], "val_loss": [5.0, 2.0, 2.5], "test_loss": [2.2], "test_accuracy": [0.7]})
    assert execution.epochs == 3
    assert execution.summary == {
        "loss": {"last": 3.0, "best": 3.0, "best_epoch": 2},
        "val_loss": {"last": 2.5, "best": 2.0, "best_epoch": 2},
    }
    assert execution.test_metrics == {"test_loss": 2.2, "test_accuracy": 0.7}
    assert (execution.final_loss, execution.final_val_loss, execution.best_val_loss, execution.test_loss) == (
        3.0,
        2.5,
        2.0,
        2.2,
    )


@pytest.mark.django_db
def test_a_folder_is_indexed_once_but_any_number_of_runs_can_wait_for_one():
    experiment = Experiment.objects.create(name="iris")
    Execution.objects.create(experiment=experiment)
    Execution.objects.create(experiment=experiment)  # queued: no folder yet
    Execution.objects.create(experiment=experiment, folder_name="10-00-00__01-01-2024")
    with pytest.raises(IntegrityError), transaction.atomic():
        Execution.objects.create(experiment=experiment, folder_name="10-00-00__01-01-2024")
    assert Execution.objects.count() == 3


@pytest.mark.django_db
def test_a_metric_has_one_history_per_execution():
    execution = Execution.objects.create(experiment=Experiment.objects.create(name="iris"), folder_name="a")
    MetricHistory.objects.create(execution=execution, name="loss", values=[1.0, 0.5])
    with pytest.raises(IntegrityError), transaction.atomic():
        MetricHistory.objects.create(execution=execution, name="loss", values=[1.0])
    assert execution.history("loss") == [1.0, 0.5]
    assert execution.history("val_loss") == []


@pytest.fixture
def three_runs():
    experiment = Experiment.objects.create(name="iris")
    metrics = {
        "a": {"loss": [0.9], "val_accuracy": [0.5, 0.8], "test_loss": [0.3]},
        "b": {"loss": [0.2], "val_accuracy": [0.9, 0.6], "test_loss": [0.1]},
        "c": {"loss": [0.5]},  # logged no accuracy and no test metrics
    }
    for name, values in metrics.items():
        execution = Execution(experiment=experiment, folder_name=name)
        execution.set_metrics(values)
        execution.save()
    return experiment


def names(queryset):
    return [execution.folder_name for execution in queryset]


@pytest.mark.django_db
def test_executions_sort_by_an_indexed_summary_column(three_runs):
    assert names(three_runs.executions.order_by_metric("loss")) == ["b", "c", "a"]
    assert names(three_runs.executions.order_by_metric("loss", descending=True)) == ["a", "c", "b"]
    assert names(three_runs.executions.order_by_metric("test_loss", "test")) == ["b", "a", "c"]


@pytest.mark.django_db
def test_executions_sort_by_any_metric_in_the_summary_best_first_and_missing_last(three_runs):
    assert names(three_runs.executions.order_by_metric("val_accuracy", "best")) == ["b", "a", "c"]
    assert names(three_runs.executions.order_by_metric("val_accuracy", "last")) == ["a", "b", "c"]
