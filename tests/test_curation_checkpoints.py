"""Checkpoint retention: model_checkpoint's keep / keep_best while training, prune_checkpoints afterwards."""

import json
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import Entry
from experiments.models import Execution
from experiments.pipeline import ConfigError, check_build, load_config, run_experiment
from experiments.pipeline.checkpoints import Saved, removable
from tests.folders import LONG_METRICS, make_run
from tests.helpers import seed_config, tiny

LOWER = lambda a, b: a < b  # noqa: E731 - the "better" of a loss


# --- the rule ------------------------------------------------------------------------------------


def saved(*values):
    return [Saved(f"w.{epoch:02d}.h5", epoch, value) for epoch, value in enumerate(values, 1)]


def names(items):
    return [item.path for item in items]


def test_keep_removes_all_but_the_last_files():
    assert names(removable(saved(5, 4, 3, 2), keep=2, keep_best=None, better=LOWER)) == ["w.01.h5", "w.02.h5"]


def test_keep_best_removes_all_but_the_best_files():
    assert names(removable(saved(5, 1, 3, 2), keep=None, keep_best=2, better=LOWER)) == ["w.01.h5", "w.03.h5"]
    higher = removable(saved(0.5, 0.9, 0.7), keep=None, keep_best=1, better=lambda a, b: a > b)
    assert names(higher) == ["w.01.h5", "w.03.h5"]


def test_a_file_survives_when_either_rule_keeps_it():
    assert names(removable(saved(1, 5, 4, 3), keep=1, keep_best=1, better=LOWER)) == ["w.02.h5", "w.03.h5"]


def test_files_without_a_value_are_never_removed_by_keep_best_alone():
    assert names(removable(saved(None, 3, float("nan"), 2), keep=None, keep_best=1, better=LOWER)) == ["w.02.h5"]
    assert names(removable(saved(None, 3, None, 2), keep=1, keep_best=1, better=LOWER)) == [
        "w.01.h5",
        "w.02.h5",
        "w.03.h5",
    ]


def test_no_rule_removes_nothing():
    assert removable(saved(1, 2, 3), keep=None, keep_best=None, better=LOWER) == []


@pytest.mark.parametrize(
    "callback, problem",
    [
        (
            {"keep": 0},
            "training.callbacks[0].keep: must be a positive integer (keep the last N checkpoint files), got 0",
        ),
        ({"keep_best": "two"}, "training.callbacks[0].keep_best: must be a positive integer (keep the N best"),
        ({"keep_best": 1, "monitor": "val_acc"}, "training.callbacks[0].monitor: refers to 'val_acc', which this run"),
    ],
)
def test_keep_and_keep_best_are_checked_with_the_config(callback, problem):
    config = tiny(callbacks=[{"type": "model_checkpoint", **callback}])
    config["training"]["samples"] = {"fit": 0.6, "val": 0.2, "test": 0.2}
    with pytest.raises(ConfigError) as caught:
        check_build(load_config(config))
    assert any(str(found).startswith(problem) for found in caught.value.problems), caught.value.problems


# --- while training --------------------------------------------------------------------------------


@pytest.mark.training
def test_model_checkpoint_keeps_the_last_n_and_the_n_best_and_names_what_it_removes(trainings, cache_dir):
    config = tiny(
        epochs=6,
        callbacks=[
            {"type": "model_checkpoint", "filepath": "last.{epoch:02d}.h5", "keep": 2},
            {"type": "model_checkpoint", "filepath": "best.{epoch:02d}-{val_loss:.3f}.h5", "keep_best": 2},
        ],
    )
    config["training"]["samples"] = {"fit": 0.6, "val": 0.2, "test": 0.2}
    result = run_experiment(load_config(config), trainings, cache_dir)
    assert result.succeeded, result.error
    assert result.path is not None
    folder = result.path / "callbacks" / "model_checkpoint"
    val_loss = json.loads((result.path / "metrics.json").read_text())["metrics"]["val_loss"]
    best = sorted(range(1, 7), key=lambda epoch: (val_loss[epoch - 1], -epoch))[:2]

    left = sorted(path.name for path in folder.iterdir())
    assert [name for name in left if name.startswith("last.")] == ["last.05.h5", "last.06.h5"]
    assert sorted(int(name[5:7]) for name in left if name.startswith("best.")) == sorted(best)

    log = (result.path / "execution.log").read_text()
    for epoch in range(1, 5):
        assert re.search(
            rf"Removed checkpoint callbacks/model_checkpoint/last\.{epoch:02d}\.h5 \(epoch {epoch}\): "
            r"model_checkpoint keeps the last 2",
            log,
        ), log
    removed_best = re.findall(r"Removed checkpoint callbacks/model_checkpoint/(best\.\d\d-[\d.]+\.h5)", log)
    assert len(removed_best) == 4
    assert not set(removed_best) & set(left)
    assert "the 2 best by val_loss" in log


# --- prune_checkpoints for runs that ended -------------------------------------------------------

# The seed's checkpoints are weights.05-27.07.h5, .10-17.55 and .15-16.03, by the seed config's
# template weights.{epoch:02d}-{val_loss:.2f}.h5; LONG_METRICS' val_loss falls every epoch.
CHECKPOINTS = "boston_housing/executions/{}/callbacks/model_checkpoint"


def checkpoint_names(root, name):
    return sorted(path.name for path in (root / CHECKPOINTS.format(name)).iterdir())


@pytest.mark.django_db
def test_a_dry_run_prints_what_it_would_free_and_changes_nothing(root, capsys):
    run = make_run(root, "06-16-31__08-04-2019")
    before = checkpoint_names(root, run.folder_name)
    call_command("prune_checkpoints", "--keep-best", "1", "--dry-run")
    out = capsys.readouterr().out
    assert (
        "boston_housing/06-16-31__08-04-2019: would remove callbacks/model_checkpoint/weights.05-27.07.h5 (17 bytes)"
        in out
    )
    assert "would remove 2 checkpoints in 1 runs: would free 34 bytes" in out
    assert "nothing was changed" in out
    assert checkpoint_names(root, run.folder_name) == before
    assert Entry.objects.count() == 0
    assert Execution.objects.get().checkpoint_bytes == 51


@pytest.mark.django_db
def test_prune_keeps_the_best_removes_the_rest_prints_the_bytes_and_reindexes_the_sizes(root, capsys):
    run = make_run(root, "06-16-31__08-04-2019")
    size = run.size_bytes
    call_command("prune_checkpoints", "--keep-best", "1")
    out = capsys.readouterr().out
    assert "removed 2 checkpoints in 1 runs: freed 34 bytes" in out
    assert checkpoint_names(root, run.folder_name) == ["weights.15-16.03.h5"]  # the lowest val_loss
    run.refresh_from_db()
    assert (run.checkpoint_bytes, run.size_bytes) == (17, size - 34)
    entry = Entry.objects.get()
    assert (entry.action, entry.execution_id, entry.details["bytes"]) == ("prune_checkpoints", run.pk, 34)
    assert entry.details["files"] == [
        "callbacks/model_checkpoint/weights.05-27.07.h5",
        "callbacks/model_checkpoint/weights.10-17.55.h5",
    ]


@pytest.mark.django_db
def test_prune_ranks_by_the_monitored_history_not_the_file_order(root, capsys):
    metrics = json.loads(json.dumps(LONG_METRICS))
    metrics["metrics"]["val_loss"][9] = 1.0  # epoch 10 is the best
    run = make_run(root, "06-16-31__08-04-2019", metrics=metrics)
    call_command("prune_checkpoints", "--keep-best", "1")
    assert checkpoint_names(root, run.folder_name) == ["weights.10-17.55.h5"]


@pytest.mark.django_db
def test_prune_can_keep_the_last_and_only_one_experiment(root, capsys):
    first = make_run(root, "06-16-31__08-04-2019")
    other = make_run(root, "06-16-31__08-04-2019", dataset="iris")
    call_command("prune_checkpoints", "--experiment", "boston_housing", "--keep-last", "2")
    assert checkpoint_names(root, first.folder_name) == ["weights.10-17.55.h5", "weights.15-16.03.h5"]
    assert len(list((root / "iris/executions/06-16-31__08-04-2019/callbacks/model_checkpoint").iterdir())) == 3
    assert other.pk != first.pk
    with pytest.raises(CommandError, match="no experiment named 'nope'"):
        call_command("prune_checkpoints", "--experiment", "nope")


@pytest.mark.django_db
def test_prune_keeps_files_whose_epoch_it_cannot_read_and_skips_runs_that_are_live(root, capsys):
    config = seed_config()
    run = make_run(root, "06-16-31__08-04-2019", config=config)
    (root / CHECKPOINTS.format(run.folder_name) / "final.h5").write_bytes(b"x")
    live = make_run(root, "06-39-51__10-04-2019")
    Execution.objects.filter(pk=live.pk).update(status="running")
    call_command("prune_checkpoints")
    out = capsys.readouterr().out
    assert "kept callbacks/model_checkpoint/final.h5: its epoch cannot be read from its name" in out
    assert checkpoint_names(root, run.folder_name) == ["final.h5", "weights.15-16.03.h5"]
    assert len(checkpoint_names(root, live.folder_name)) == 3


@pytest.mark.parametrize(
    "command, option, value, expected",
    [
        ("prune_checkpoints", "--keep-best", "0", "expected 1 or more, got 0"),
        ("prune_checkpoints", "--keep-last", "two", "expected a whole number (1 or more), got 'two'"),
        ("empty_trash", "--older-than", "-1", "expected 0 or more days, got -1"),
    ],
)
def test_a_bad_count_is_a_usage_error_naming_its_option(command, option, value, expected):
    with pytest.raises(CommandError, match=re.escape(f"argument {option}: {expected}")):
        call_command(command, option, value)
