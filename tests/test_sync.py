"""experiments.index.sync: folders become rows, a second sync changes nothing, unchanged folders are not read."""

import builtins
import datetime as dt
import json
import os
import shutil

import pytest

from experiments.index.sync import sync_folder, sync_trainings
from experiments.models import Execution, Experiment, MetricHistory
from tests.folders import SEED_CHECKPOINTS, SEED_METRICS, UTC, write_execution
from tests.helpers import seed_config

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(trainings):
    trainings.mkdir()
    return trainings


def the_execution():
    return Execution.objects.select_related("experiment").get()


def test_it_indexes_the_seeds_own_example_folder(root):
    write_execution(root)
    report = sync_trainings(root)
    assert report.line() == "indexed 1, unchanged 0, errors 0"
    execution = the_execution()
    assert execution.experiment.name == "boston_housing"
    assert execution.folder_name == "06-16-31__08-04-2019"
    assert execution.status == Execution.Status.SUCCEEDED
    assert execution.error == ""
    assert execution.title == "Boston Housing"
    assert execution.config == seed_config()
    assert execution.epochs == 4
    assert execution.summary["val_loss"] == {"last": 15.748360737715617, "best": 15.611931527015006, "best_epoch": 3}
    assert execution.test_metrics == {"test_loss": 22.415260909807564, "test_mean_absolute_error": 2.991008189645144}
    assert execution.final_val_loss == 15.748360737715617
    assert execution.test_loss == 22.415260909807564
    assert execution.elapsed == SEED_METRICS["elapsed"]
    assert execution.hardware == {}
    assert execution.started_at == dt.datetime(2019, 4, 8, 6, 16, 29, tzinfo=UTC)
    assert execution.finished_at == dt.datetime(2019, 4, 8, 6, 16, 47, tzinfo=UTC)
    assert [artifact["path"] for artifact in execution.artifacts] == [
        *(f"callbacks/model_checkpoint/{name}" for name in SEED_CHECKPOINTS),
        "model.h5",
    ]
    histories = dict(MetricHistory.objects.filter(execution=execution).values_list("name", "values"))
    assert histories == SEED_METRICS["metrics"]  # one row per metric, the whole array in it


def test_a_second_sync_changes_nothing(root):
    write_execution(root)
    write_execution(root, name="06-39-51__10-04-2019")
    sync_trainings(root)
    before = list(Execution.objects.values_list("pk", "updated_at", "synced_at").order_by("pk"))
    histories = list(MetricHistory.objects.values_list("pk", "values").order_by("pk"))

    report = sync_trainings(root)

    assert report.line() == "indexed 0, unchanged 2, errors 0"
    assert list(Execution.objects.values_list("pk", "updated_at", "synced_at").order_by("pk")) == before
    assert list(MetricHistory.objects.values_list("pk", "values").order_by("pk")) == histories
    assert Experiment.objects.count() == 1


def test_an_unchanged_folder_is_skipped_without_opening_its_files(root, monkeypatch):
    folder = write_execution(root)
    sync_trainings(root)
    # Same size, same mtime, different bytes: only a read would notice.
    metrics = folder / "metrics.json"
    stat = metrics.stat()
    metrics.write_bytes(b"x" * stat.st_size)
    os.utime(metrics, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    opened = []
    real_open = builtins.open

    def recording_open(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", recording_open)

    report = sync_trainings(root)

    assert report.unchanged == 1
    assert report.indexed == 0
    assert [path for path in opened if str(folder) in path] == []
    assert the_execution().status == Execution.Status.SUCCEEDED


def test_a_changed_folder_is_read_again(root):
    folder = write_execution(root)
    sync_trainings(root)
    longer = json.loads(json.dumps(SEED_METRICS))
    longer["metrics"]["val_loss"].append(12.5)
    (folder / "metrics.json").write_text(json.dumps(longer))

    report = sync_trainings(root)

    assert report.line() == "indexed 1, unchanged 0, errors 0"
    execution = the_execution()
    assert execution.summary["val_loss"] == {"last": 12.5, "best": 12.5, "best_epoch": 5}
    assert execution.history("val_loss")[-1] == 12.5


def test_a_metric_no_longer_in_the_file_loses_its_history(root):
    folder = write_execution(root)
    sync_trainings(root)
    fewer = json.loads(json.dumps(SEED_METRICS))
    del fewer["metrics"]["mean_absolute_error"]
    (folder / "metrics.json").write_text(json.dumps(fewer))
    sync_trainings(root)
    assert set(MetricHistory.objects.values_list("name", flat=True)) == set(fewer["metrics"])
    assert "mean_absolute_error" not in the_execution().summary


def test_a_vanished_folder_becomes_missing_and_keeps_its_row(root):
    folder = write_execution(root)
    write_execution(root, name="06-39-51__10-04-2019")
    sync_trainings(root)
    moved = root.parent / "elsewhere"
    shutil.move(folder, moved)

    report = sync_trainings(root)

    assert report.missing == 1
    assert report.unchanged == 1
    gone = Execution.objects.get(folder_name="06-16-31__08-04-2019")
    assert gone.status == Execution.Status.MISSING
    assert gone.history("val_loss") == SEED_METRICS["metrics"]["val_loss"]  # nothing deleted
    assert Execution.objects.get(folder_name="06-39-51__10-04-2019").status == Execution.Status.SUCCEEDED

    shutil.move(moved, folder)  # it comes back exactly as it was
    report = sync_trainings(root)
    assert report.indexed == 1
    assert Execution.objects.get(pk=gone.pk).status == Execution.Status.SUCCEEDED


def test_a_root_that_is_not_there_is_an_error_not_a_mass_of_missing_rows(root):
    write_execution(root)
    sync_trainings(root)
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        sync_trainings(root.parent / "unmounted")
    assert the_execution().status == Execution.Status.SUCCEEDED


def test_other_entries_in_the_root_are_not_experiments(root):
    write_execution(root)
    (root / "mlflow.db").write_bytes(b"SQLite format 3\x00")
    (root / "mlartifacts" / "abc").mkdir(parents=True)
    (root / "boston_housing" / "executions" / "notes.txt").write_text("not a run")
    assert sync_trainings(root).line() == "indexed 1, unchanged 0, errors 0"
    assert list(Experiment.objects.values_list("name", flat=True)) == ["boston_housing"]


def test_a_folder_named_otherwise_still_gets_its_start_time_from_the_log(root):
    write_execution(root, name="copied-from-laptop")
    write_execution(root, name="07-00-00__09-04-2019_2", log=None)
    sync_trainings(root)
    assert Execution.objects.get(folder_name="copied-from-laptop").started_at == dt.datetime(
        2019, 4, 8, 6, 16, 29, tzinfo=UTC
    )
    assert Execution.objects.get(folder_name="07-00-00__09-04-2019_2").started_at == dt.datetime(
        2019, 4, 9, 7, 0, 0, tzinfo=UTC
    )


def test_sync_folder_indexes_one_folder_and_agrees_with_the_sweep(root):
    folder = write_execution(root)
    write_execution(root, name="06-39-51__10-04-2019")
    report = sync_folder(folder)
    assert report.indexed == 1
    assert Execution.objects.count() == 1
    report = sync_trainings(root)
    assert report.line() == "indexed 1, unchanged 1, errors 0"  # the sweep sees the same folder_path


def test_sync_folder_marks_a_folder_that_is_gone_missing(root):
    folder = write_execution(root)
    sync_folder(folder)
    shutil.rmtree(folder)
    assert sync_folder(folder).missing == 1
    assert the_execution().status == Execution.Status.MISSING


def test_a_failed_run_is_failed_with_its_error_and_an_interrupted_one_cancelled(root):
    write_execution(root, name="a", metrics={**SEED_METRICS, "error": "ValueError: model.input_shape is [12]"})
    write_execution(root, name="b", metrics={**SEED_METRICS, "error": "interrupted"})
    report = sync_trainings(root)
    assert report.errors == 0  # a run that failed is not a folder sync could not read
    failed, cancelled = Execution.objects.get(folder_name="a"), Execution.objects.get(folder_name="b")
    assert failed.status == Execution.Status.FAILED
    assert failed.error == "ValueError: model.input_shape is [12]"
    assert cancelled.status == Execution.Status.CANCELLED
    assert failed.summary["val_loss"]["best"] == 15.611931527015006  # its metrics are still indexed


def test_order_by_metric_sorts_an_experiments_executions_by_summary(root):
    for name, last in (("a", 3.0), ("b", 1.0), ("c", 2.0)):
        metrics = json.loads(json.dumps(SEED_METRICS))
        metrics["metrics"]["val_loss"][-1] = last
        metrics["metrics"]["val_mean_absolute_error"][-1] = last
        write_execution(root, name=name, metrics=metrics)
    sync_trainings(root)
    executions = Experiment.objects.get().executions
    assert [e.folder_name for e in executions.order_by_metric("val_loss")] == ["b", "c", "a"]
    assert [e.folder_name for e in executions.order_by_metric("val_mean_absolute_error", descending=True)] == [
        "a",
        "c",
        "b",
    ]
