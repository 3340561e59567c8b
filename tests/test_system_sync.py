"""Sync indexes system_metrics.jsonl: the summary on Execution.system, the series as system/... histories."""

import json

import pytest

from experiments.index.sync import sync_trainings
from experiments.models import Execution, MetricHistory
from tests.folders import write_execution

pytestmark = pytest.mark.django_db

LINES = [
    {"time": 0.0, "started_at": 1764412345.0, "interval": 5.0},
    {"time": 5.0, "cpu_percent": 98.0, "memory_mb": 700.0, "system_cpu_percent": 55.0, "system_memory_mb": 4000.0},
    {"time": 7.5, "epoch_end": 1},
    {"time": 10.0, "cpu_percent": 102.0, "memory_mb": 812.5, "system_cpu_percent": 45.0, "system_memory_mb": 4100.0},
    {"time": 12.0, "epoch_end": 2},
]


@pytest.fixture
def root(trainings):
    trainings.mkdir()
    return trainings


def write_system(folder, lines=LINES, tail=b""):
    (folder / "system_metrics.jsonl").write_bytes("".join(json.dumps(line) + "\n" for line in lines).encode() + tail)


def histories(execution):
    return dict(MetricHistory.objects.filter(execution=execution).values_list("name", "values"))


def test_the_summary_and_the_series_are_indexed_beside_the_epoch_metrics(root):
    write_system(write_execution(root))
    sync_trainings(root)
    execution = Execution.objects.get()
    assert execution.system == {
        "samples": 2,
        "duration_s": 10.0,
        "interval_s": 5.0,
        "peak_memory_mb": 812.5,
        "mean_cpu_percent": 100.0,
        "mean_system_cpu_percent": 50.0,
        "peak_system_memory_mb": 4100.0,
    }
    found = histories(execution)
    assert found["system/time"] == [5.0, 10.0]
    assert found["system/memory_mb"] == [700.0, 812.5]
    assert found["system/epoch_end"] == [7.5, 12.0]
    assert found["val_loss"]  # the epoch metrics are still there
    # ... and are all the run's summary holds: a system series is sampled in time, not by epoch.
    assert not any(name.startswith("system/") for name in execution.summary)
    assert execution.epochs == 4
    assert execution.error == ""


def test_a_crash_mid_line_leaves_a_truncated_last_line_that_is_skipped(root):
    write_system(write_execution(root), tail=b'{"time": 15.0, "cpu_perc')
    sync_trainings(root)
    execution = Execution.objects.get()
    assert execution.system["samples"] == 2
    assert execution.error == ""
    assert histories(execution)["system/time"] == [5.0, 10.0]


def test_lines_that_cannot_be_read_are_named_on_the_runs_error(root):
    write_system(write_execution(root), tail=b"garbage\n")
    sync_trainings(root)
    execution = Execution.objects.get()
    assert execution.status == "succeeded"
    assert execution.system["samples"] == 2
    assert execution.error == (
        "system_metrics.jsonl: 1 line is not a JSON object of numbers with a time (first at line 6); skipped"
    )


def test_a_file_that_appears_later_is_indexed_and_one_taken_away_clears_it(root):
    folder = write_execution(root)
    sync_trainings(root)
    assert Execution.objects.get().system == {}
    write_system(folder)
    sync_trainings(root)
    execution = Execution.objects.get()
    assert execution.system["samples"] == 2
    assert "system/time" in histories(execution)
    (folder / "system_metrics.jsonl").unlink()
    sync_trainings(root)
    execution.refresh_from_db()
    assert execution.system == {}
    assert not any(name.startswith("system/") for name in histories(execution))


def test_a_symlink_out_of_the_trainings_root_is_not_read(root, tmp_path):
    outside = tmp_path / "elsewhere.jsonl"
    outside.write_text(json.dumps(LINES[1]) + "\n")
    folder = write_execution(root)
    (folder / "system_metrics.jsonl").symlink_to(outside)
    sync_trainings(root)
    execution = Execution.objects.get()
    assert execution.system == {}
    assert "system_metrics.jsonl: is a symlink to" in execution.error


def test_a_run_still_training_gets_its_samples_indexed_and_keeps_its_epochs(root):
    folder = write_execution(root, metrics=None)  # no metrics.json yet: the run is going on
    write_system(folder)
    sync_trainings(root)
    execution = Execution.objects.get()
    assert execution.status == "running"
    assert execution.system["samples"] == 2
    assert histories(execution)["system/memory_mb"] == [700.0, 812.5]
