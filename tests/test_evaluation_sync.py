"""Sync indexes evaluation.json's headline numbers in ``Execution.evaluation``; a bad file is a problem line."""

import json
import os

import pytest

from experiments.evaluation.report import MAX_BYTES
from experiments.index.sync import sync_trainings
from experiments.models import Execution
from tests.folders import write_execution

pytestmark = pytest.mark.django_db

NAME = "06-16-31__08-04-2019"
REPORT = {
    "format": 1,
    "task": "classification",
    "split": "test",
    "samples": 30,
    "headline": {"accuracy": 0.9, "macro_f1": 0.88, "roc_auc": 0.97},
    "not_computed": [],
}


def folder_with(root, report):
    folder = write_execution(root, name=NAME, dataset="iris")
    if report is not None:
        data = report if isinstance(report, bytes) else json.dumps(report).encode()
        (folder / "evaluation.json").write_bytes(data)
    return folder


def synced(root):
    sync_trainings(root)
    return Execution.objects.get(folder_name=NAME)


def test_the_headline_numbers_are_indexed(root):
    folder_with(root, REPORT)
    execution = synced(root)
    assert execution.evaluation == {"accuracy": 0.9, "macro_f1": 0.88, "roc_auc": 0.97}
    assert execution.error == ""
    assert execution.status == "succeeded"


def test_regression_numbers_and_a_number_that_could_not_be_computed(root):
    # NaN as Python's json writes it, and null: neither is a number a table can sort on, so both are left out.
    folder_with(root, b'{"task": "regression", "headline": {"r2": NaN, "rmse": 3.5, "mae": null}}')
    assert synced(root).evaluation == {"rmse": 3.5}


def test_a_report_added_later_is_indexed_and_one_taken_away_is_cleared(root):
    folder = folder_with(root, None)
    assert synced(root).evaluation == {}
    (folder / "evaluation.json").write_text(json.dumps(REPORT))
    assert synced(root).evaluation["accuracy"] == 0.9  # the folder changed, so sync read it again
    (folder / "evaluation.json").unlink()
    assert synced(root).evaluation == {}


def test_dropping_the_index_and_syncing_gives_the_numbers_back(root):
    folder_with(root, REPORT)
    synced(root)
    Execution.objects.all().delete()
    assert synced(root).evaluation["roc_auc"] == 0.97


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"headline": ', "evaluation.json: is not valid JSON"),
        (b"[1, 2]", 'evaluation.json: expected an object with a "headline" object'),
        (b'{"headline": [0.9]}', 'evaluation.json: expected an object with a "headline" object'),
        (b"[" * 100 + b"]" * 100, "evaluation.json: is nested 100 deep"),
    ],
)
def test_a_report_that_cannot_be_read_is_a_problem_line_and_indexes_nothing(root, content, problem):
    folder_with(root, content)
    execution = synced(root)
    assert execution.evaluation == {}
    assert problem in execution.error
    assert execution.status == "succeeded"  # the run itself is what metrics.json says


def test_an_oversized_report_is_not_read(root):
    folder = folder_with(root, None)
    with open(folder / "evaluation.json", "wb") as handle:
        handle.write(b'{"headline": {"accuracy": 1.0}, "pad": "')
        handle.write(b"x" * MAX_BYTES)
        handle.write(b'"}')
    execution = synced(root)
    assert execution.evaluation == {}
    assert f"at most {MAX_BYTES:,} are read" in execution.error


def test_a_report_linking_out_of_the_root_is_not_read(root, tmp_path):
    outside = tmp_path / "elsewhere.json"
    outside.write_text(json.dumps(REPORT))
    folder = folder_with(root, None)
    os.symlink(outside, folder / "evaluation.json")
    execution = synced(root)
    assert execution.evaluation == {}
    assert f"evaluation.json: is a symlink to {outside}, outside the trainings root; not read" in execution.error
