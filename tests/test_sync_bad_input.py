"""Bad input in a folder is recorded on its execution (status and error naming the file); the sweep goes on."""

import datetime as dt
import json
import os
import time

import pytest
from django.db import connection
from django.utils import timezone

from experiments.index.sync import sync_trainings
from experiments.models import Execution, MetricHistory
from tests.folders import SEED_METRICS, write_execution
from tests.helpers import seed_config

pytestmark = pytest.mark.django_db

Status = Execution.Status
SEED_LOG_TAIL = "2019-04-08 06:20:00,000 - gymnosd - INFO - Trainer - Fitting model with 303 samples ...\n"


@pytest.fixture
def root(trainings):
    trainings.mkdir()
    return trainings


def sync_with_a_good_neighbour(root):
    """Sync a tree that also holds one good folder, and check the bad one did not stop it."""
    write_execution(root, name="good")
    report = sync_trainings(root)
    good = Execution.objects.get(folder_name="good")
    assert good.status == Status.SUCCEEDED
    assert good.error == ""
    assert good.epochs == 4
    return report, Execution.objects.get(folder_name="bad")


def test_a_truncated_metrics_json_fails_the_execution_and_names_the_file(root):
    text = json.dumps(SEED_METRICS, indent=4)
    write_execution(root, name="bad", metrics=text[: len(text) // 2])
    report, bad = sync_with_a_good_neighbour(root)
    assert report.line() == "indexed 2, unchanged 0, errors 1"
    assert bad.status == Status.FAILED
    assert bad.error.startswith("metrics.json: is not valid JSON (")
    assert "truncated" in bad.error
    assert bad.summary == {}
    assert not MetricHistory.objects.filter(execution=bad).exists()
    assert bad.config == seed_config()  # what could be read still is


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"\xff\xfe\x00garbage", "metrics.json: is not UTF-8 text"),
        (b"<html>502 Bad Gateway</html>", "metrics.json: is not valid JSON"),
        (b"[1, 2, 3]", 'metrics.json: expected an object with a "metrics" object'),
    ],
)
def test_a_metrics_json_that_is_not_json_fails_the_execution(root, content, expected):
    write_execution(root, name="bad", metrics=content)
    report, bad = sync_with_a_good_neighbour(root)
    assert report.errors == 1
    assert bad.status == Status.FAILED
    assert bad.error.startswith(expected)


def test_a_missing_metrics_json_is_a_run_still_going_while_its_files_change(root):
    write_execution(root, name="bad", metrics=None)
    report, bad = sync_with_a_good_neighbour(root)
    assert report.errors == 0
    assert bad.status == Status.RUNNING
    assert bad.error == ""
    assert bad.finished_at is None


def test_a_missing_metrics_json_in_a_folder_untouched_for_long_is_a_crashed_run(root):
    folder = write_execution(root, name="bad", metrics=None)
    long_ago = time.time() - 2 * 3600
    for directory, _, files in os.walk(folder):
        for name in files:
            os.utime(os.path.join(directory, name), (long_ago, long_ago))
    report, bad = sync_with_a_good_neighbour(root)
    assert report.errors == 1
    assert bad.status == Status.FAILED
    assert bad.error.startswith("metrics.json: missing, and nothing in the folder changed since")
    assert "crashed or was stopped" in bad.error


def test_a_running_folder_that_stops_changing_becomes_failed_on_a_later_sync(root):
    write_execution(root, name="bad", metrics=None)
    sync_trainings(root)
    assert Execution.objects.get().status == Status.RUNNING
    report = sync_trainings(root, stale_after=dt.timedelta(0))  # same files, but time has passed
    assert report.indexed == 1
    assert Execution.objects.get().status == Status.FAILED


def age(folder, seconds):
    then = time.time() - seconds
    for directory, _, files in os.walk(folder):
        for name in files:
            os.utime(os.path.join(directory, name), (then, then))


def test_how_long_a_folder_may_stay_still_is_the_gymnos_sync_stale_minutes_setting(root, settings):
    folder = write_execution(root, name="slow", metrics=None)
    age(folder, 40 * 60)  # a CLI run whose epoch has taken 40 minutes so far
    settings.GYMNOS_SYNC_STALE_MINUTES = 60
    sync_trainings(root)
    assert Execution.objects.get().status == Status.RUNNING
    settings.GYMNOS_SYNC_STALE_MINUTES = 30
    sync_trainings(root)
    assert Execution.objects.get().status == Status.FAILED


def test_a_run_called_crashed_succeeds_once_its_metrics_json_appears(root):
    folder = write_execution(root, name="slow", metrics=None)
    age(folder, 2 * 3600)
    sync_trainings(root)
    assert Execution.objects.get().status == Status.FAILED
    (folder / "metrics.json").write_text(json.dumps(SEED_METRICS))
    sync_trainings(root)
    row = Execution.objects.get()
    assert row.status == Status.SUCCEEDED
    assert row.error == ""
    assert row.epochs == 4


def test_a_missing_metrics_json_leaves_what_a_worker_recorded_alone(root):
    write_execution(root, name="bad", metrics=None)
    sync_trainings(root)
    execution = Execution.objects.get()
    MetricHistory.objects.create(execution=execution, name="loss", values=[5.0, 4.0])
    Execution.objects.filter(pk=execution.pk).update(
        summary={"loss": {"last": 4.0, "best": 4.0, "best_epoch": 2}}, epochs=2
    )
    (root / "boston_housing" / "executions" / "bad" / "execution.log").write_text(
        "2019-04-08 06:20:00,000 - gymnosd - INFO - Trainer - epoch\n"
    )
    assert sync_trainings(root).indexed == 1
    execution.refresh_from_db()
    assert execution.status == Status.RUNNING
    assert execution.epochs == 2
    assert execution.history("loss") == [5.0, 4.0]


def test_nan_and_infinity_are_stored_as_null_and_reported(root):
    metrics = json.loads(json.dumps(SEED_METRICS))
    metrics["metrics"]["val_loss"][1] = float("nan")
    metrics["metrics"]["loss"][2:] = [float("inf"), float("-inf")]
    metrics["elapsed"]["fit_model"] = float("nan")
    text = json.dumps(metrics)  # Python writes the NaN, Infinity and -Infinity tokens
    assert "NaN" in text
    assert "-Infinity" in text
    write_execution(root, name="bad", metrics=text)
    report, bad = sync_with_a_good_neighbour(root)
    assert report.errors == 1
    assert bad.status == Status.SUCCEEDED  # the run finished; some values are not numbers
    assert "metrics.json: val_loss is NaN or Infinity at epoch 2 (stored as null)" in bad.error
    assert "metrics.json: loss is NaN or Infinity at epoch 3, 4 (stored as null)" in bad.error
    assert bad.history("val_loss")[1] is None
    assert bad.summary["val_loss"] == {"last": 15.748360737715617, "best": 15.611931527015006, "best_epoch": 3}
    assert bad.summary["loss"] == {"last": 351.41469722533776, "best": 351.41469722533776, "best_epoch": 2}
    assert bad.elapsed["fit_model"] is None


def test_a_metric_that_is_not_a_list_of_numbers_is_skipped_and_reported(root):
    metrics = json.loads(json.dumps(SEED_METRICS))
    metrics["metrics"]["lr"] = "0.001"
    metrics["metrics"]["flags"] = [True, False]
    write_execution(root, name="bad", metrics=metrics)
    report, bad = sync_with_a_good_neighbour(root)
    assert "metrics.json: metrics.lr is not a list of numbers; not indexed" in bad.error
    assert "metrics.json: metrics.flags is not a list of numbers; not indexed" in bad.error
    assert bad.status == Status.SUCCEEDED
    assert bad.epochs == 4


def test_a_config_that_no_longer_validates_is_kept_and_reported(root):
    config = seed_config()
    config["model"]["network"][0]["units"] = -5
    config["training"]["epoch"] = 3
    write_execution(root, name="bad", config=config)
    report, bad = sync_with_a_good_neighbour(root)
    assert report.errors == 1
    assert bad.status == Status.SUCCEEDED  # the run itself finished; its config is just out of date
    assert bad.config == config
    assert bad.error.startswith("training_config.json: no longer validates: ")
    assert "model.network[0].units: must be a positive integer, got -5" in bad.error
    assert "training.epoch: unknown key; did you mean 'epochs'?" in bad.error


def test_a_config_that_is_not_json_is_reported(root):
    write_execution(root, name="bad", config=b'{"experiment": ')
    report, bad = sync_with_a_good_neighbour(root)
    assert bad.config is None
    assert bad.error.startswith("training_config.json: is not valid JSON")
    assert bad.status == Status.SUCCEEDED
    assert bad.epochs == 4


def test_a_log_with_bytes_that_are_not_utf8_is_read_and_reported(root):
    log = b"2019-04-08 06:16:29,724 - gymnosd - INFO - Main - Starting\n"
    log += b"2019-04-08 06:16:30,000 - gymnosd - INFO - Trainer - caf\xe9 \xff\xfe\n"
    log += b"2019-04-08 06:16:47,376 - gymnosd - INFO - Trainer - Saving model\n"
    write_execution(root, name="bad", log=log)
    report, bad = sync_with_a_good_neighbour(root)
    assert report.errors == 1
    assert bad.status == Status.SUCCEEDED
    assert bad.error.startswith("execution.log: has bytes that are not UTF-8 (first at byte")
    assert bad.started_at == dt.datetime(2019, 4, 8, 6, 16, 29, tzinfo=dt.UTC)
    assert bad.finished_at == dt.datetime(2019, 4, 8, 6, 16, 47, tzinfo=dt.UTC)


def test_a_folder_that_is_a_symlink_out_of_the_root_is_recorded_but_not_read(root, tmp_path):
    outside = write_execution(tmp_path / "outside", name="secret")
    (root / "boston_housing" / "executions").mkdir(parents=True)
    os.symlink(outside, root / "boston_housing" / "executions" / "bad")
    report, bad = sync_with_a_good_neighbour(root)
    assert report.errors == 1
    assert bad.status == Status.FAILED
    assert bad.error == f"folder: is a symlink to {outside}, outside the trainings root; not read"
    assert bad.config is None
    assert bad.summary == {}


def test_a_file_that_is_a_symlink_out_of_the_root_is_not_read(root, tmp_path):
    folder = write_execution(root, name="bad", metrics=None)
    leaked = tmp_path / "leaked.json"
    leaked.write_text(json.dumps({"metrics": {"loss": [123456.0]}}))
    os.symlink(leaked, folder / "metrics.json")
    report, bad = sync_with_a_good_neighbour(root)
    assert bad.status == Status.FAILED
    assert bad.error == f"metrics.json: is a symlink to {leaked}, outside the trainings root; not read"
    assert not MetricHistory.objects.filter(execution=bad).exists()


def test_a_run_folder_linked_from_inside_the_root_is_read(root):
    folder = write_execution(root, name="linked")
    os.symlink(folder, root / "boston_housing" / "executions" / "alias")
    assert sync_trainings(root).line() == "indexed 2, unchanged 0, errors 0"
    for name in ("linked", "alias"):
        execution = Execution.objects.get(folder_name=name)
        assert execution.status == Status.SUCCEEDED
        assert execution.epochs == 4
        assert execution.error == ""


def test_a_file_linking_out_of_its_run_folder_is_not_read_even_inside_the_root(root):
    """Every file read from a run folder resolves inside it (the one reader's rule, as the pages have it)."""
    shared = root / "shared"  # no executions/ inside: not an experiment
    shared.mkdir()
    (shared / "metrics.json").write_text(json.dumps(SEED_METRICS))
    folder = write_execution(root, name="bad", metrics=None)
    os.symlink(shared / "metrics.json", folder / "metrics.json")
    report, bad = sync_with_a_good_neighbour(root)
    assert report.errors == 1
    assert bad.status == Status.FAILED
    assert bad.error == f"metrics.json: is a symlink to {shared / 'metrics.json'}, outside the run's folder; not read"
    assert not MetricHistory.objects.filter(execution=bad).exists()


def test_a_value_the_database_cannot_store_fails_only_that_folder(root):
    config = seed_config()
    config["experiment"]["name"] = "nul \x00 inside"  # PostgreSQL stores no NUL in text or jsonb
    config["experiment"]["tags"] = ["lone \ud800 surrogate"]  # not encodable as UTF-8 by either database
    write_execution(root, name="bad", config=json.dumps(config).encode())
    report, bad = sync_with_a_good_neighbour(root)
    if connection.vendor == "postgresql":
        assert bad.status == Status.FAILED
        assert bad.error.startswith("folder: the database refused what it holds: ")
        assert report.errors == 1
    else:
        assert bad.status == Status.SUCCEEDED
        assert bad.title == "nul \x00 inside"
        assert bad.tags == ["lone ? surrogate"]


def test_a_folder_name_that_is_not_utf8_is_reported_and_skipped(root):
    executions = root / "boston_housing" / "executions"
    executions.mkdir(parents=True)
    os.mkdir(os.fsencode(executions) + b"/run-\xff")
    write_execution(root, name="good")
    report = sync_trainings(root)
    assert report.line() == "indexed 1, unchanged 0, errors 1"
    assert report.problems == ["boston_housing/executions/run-?: the folder name is not UTF-8 text; not read"]


def test_a_run_a_live_worker_vouches_for_stays_running_however_still_its_files(root):
    folder = write_execution(root, name="bad", metrics=None)
    sync_trainings(root)
    Execution.objects.update(heartbeat_at=timezone.now())  # a worker runs it and sends heartbeats
    assert sync_trainings(root, stale_after=dt.timedelta(0)).line() == "indexed 0, unchanged 1, errors 0"
    (folder / "execution.log").write_text(SEED_LOG_TAIL)  # read again, still no metrics.json
    assert sync_trainings(root, stale_after=dt.timedelta(0)).line() == "indexed 1, unchanged 0, errors 0"
    execution = Execution.objects.get()
    assert execution.status == Status.RUNNING
    assert execution.error == ""


def test_without_metrics_json_an_ended_run_keeps_the_outcome_recorded_for_it(root):
    folder = write_execution(root, name="bad", metrics=None)
    sync_trainings(root)
    Execution.objects.update(status=Status.CANCELLED, error="cancelled by a user")
    (folder / "execution.log").write_text(SEED_LOG_TAIL)  # the folder changes again, still no metrics.json
    assert sync_trainings(root, stale_after=dt.timedelta(0)).indexed == 1
    execution = Execution.objects.get()
    assert (execution.status, execution.error) == (Status.CANCELLED, "cancelled by a user")
    assert execution.started_at == dt.datetime(2019, 4, 8, 6, 20, tzinfo=dt.UTC)  # the rest is read
