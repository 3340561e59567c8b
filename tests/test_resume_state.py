"""What a run keeps to resume from (#23): the callbacks' and random state carried over; a bad state falls back."""

import json
import random
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from experiments.pipeline import load_config, run_experiment
from experiments.pipeline.resume import PREVIOUS_FILE, STATE_FILE, STATE_FOLDER, Resume
from tests.helpers import tiny
from tests.test_resume import DiesAt

pytestmark = [pytest.mark.training]


def _run(tmp_path: Path, config: dict[str, Any], callbacks: tuple[Any, ...] = (), resume: Path | None = None) -> Any:
    again = Resume(resume, attempt=2) if resume is not None else None
    return run_experiment(
        load_config(config), tmp_path / "trainings", tmp_path / "cache", callbacks=list(callbacks), resume=again
    )


def _state(folder: Path, name: str = STATE_FILE) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((folder / STATE_FOLDER / name).read_text())
    return state


def _losses(folder: Path) -> list[float]:
    losses: list[float] = json.loads((folder / "metrics.json").read_text())["metrics"]["loss"]
    return losses


# Early stopping that never sees the loss improve (it watches it for a rise): it stops 3 epochs after the first.
NEVER_BETTER = {"type": "early_stopping", "monitor": "loss", "mode": "max", "patience": 3}


def test_early_stoppings_wait_carries_over_a_resume(tmp_path):
    config = tiny(epochs=10, callbacks=[NEVER_BETTER])
    whole = _run(tmp_path, config)
    assert len(_losses(whole.path)) == 4  # uninterrupted: it stops after its 4th epoch

    first = _run(tmp_path, config, (DiesAt(1),))
    assert _state(first.path)["callbacks"]["0:EarlyStopping"]["wait"] == 1
    again = _run(tmp_path, config, resume=first.path)
    assert again.succeeded, again.error
    # Its wait went on from 1: stopped at the same epoch. Started again from 0, it would have trained 6.
    assert len(_losses(first.path)) == 4


def test_reduce_lr_on_plateaus_lowered_rate_and_counters_carry_over(tmp_path):
    plateau = {"type": "reduce_lr_on_plateau", "monitor": "loss", "mode": "max", "patience": 1, "factor": 0.5}
    config = tiny(epochs=5, callbacks=[plateau])
    first = _run(tmp_path, config, (DiesAt(2),))
    kept = _state(first.path)["callbacks"]["0:ReduceLROnPlateau"]
    again = _run(tmp_path, config, resume=first.path)
    assert again.succeeded, again.error
    whole = _run(tmp_path, config)
    assert kept["cooldown_counter"] == 0
    assert "best" in kept
    # The rate it lowered before the crash, and when it lowers it next, as in the run that was never stopped.
    assert again.metrics["metrics"]["learning_rate"] == whole.metrics["metrics"]["learning_rate"]


class Draws(keras.callbacks.Callback):
    """Draws from Python's and NumPy's generators at each epoch's start, as a custom callback or augmentation would."""

    def __init__(self) -> None:
        super().__init__()
        self.draws: list[tuple[float, float]] = []

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.draws.append((random.random(), float(np.random.random())))


def test_the_random_generators_go_on_where_they_were(tmp_path):
    config = tiny(epochs=5)
    whole, crashed, resumed = Draws(), Draws(), Draws()
    _run(tmp_path, config, (whole,))
    first = _run(
        tmp_path,
        config,
        (
            crashed,
            DiesAt(2),
        ),
    )
    _run(tmp_path, config, (resumed,), resume=first.path)
    assert crashed.draws == whole.draws[:3]
    assert resumed.draws == whole.draws[3:]  # not the draws of a run started from its seed again


def _crashed_at_third_epoch(tmp_path: Path) -> tuple[dict[str, Any], Path]:
    config = tiny(epochs=6)
    first = _run(tmp_path, config, (DiesAt(2),))
    assert _state(first.path)["epoch"] == 3
    assert _state(first.path, PREVIOUS_FILE)["epoch"] == 2  # the state before it is kept until the new one is whole
    return config, first.path


def _resumed_from(folder: Path) -> str:
    return (folder / "execution.log").read_text()


@pytest.mark.parametrize("damage", ["truncated weights", "weights missing", "not JSON"])
def test_a_damaged_state_falls_back_to_the_one_before_it(tmp_path, damage):
    config, folder = _crashed_at_third_epoch(tmp_path)
    kept = _losses(folder)
    weights = folder / STATE_FOLDER / "epoch-3.weights.safetensors"
    if damage == "truncated weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "weights missing":
        weights.unlink()
    else:
        (folder / STATE_FOLDER / STATE_FILE).write_text('{"epoch": 3, "weights": ')
    again = _run(tmp_path, config, resume=folder)
    assert again.succeeded, again.error
    log = _resumed_from(folder)
    assert "resumed at epoch 2 (attempt 2)" in log
    assert f"{STATE_FOLDER}/{STATE_FILE}" in log  # the warning names the file it passed over
    losses = _losses(folder)
    assert len(losses) == 6
    assert losses[:2] == kept[:2]  # each epoch once: the third trained again, not twice


def test_a_state_with_nothing_to_fall_back_to_fails_the_run_naming_each_file(tmp_path):
    config, folder = _crashed_at_third_epoch(tmp_path)
    (folder / STATE_FOLDER / STATE_FILE).write_text("not json")
    (folder / STATE_FOLDER / "epoch-2.weights.safetensors").write_bytes(b"\x10\x00\x00")
    again = _run(tmp_path, config, resume=folder)
    assert not again.succeeded
    assert f"{STATE_FOLDER}/{STATE_FILE} cannot be read" in again.error
    assert f"{STATE_FOLDER}/{PREVIOUS_FILE}: the weights it names" in again.error
    assert "not a whole safetensors file" in again.error
    assert not (folder / "model.h5").exists()  # nothing trained on from a half-loaded model


def test_resume_every_keeps_a_state_every_n_epochs_and_is_validated(tmp_path):
    config = tiny(epochs=6)
    config["training"]["resume_every"] = 2
    first = _run(tmp_path, config, (DiesAt(2),))
    assert _state(first.path)["epoch"] == 2  # the third epoch's end kept nothing
    again = _run(tmp_path, config, resume=first.path)
    assert again.succeeded, again.error
    assert len(_losses(first.path)) == 6
    config["training"]["resume_every"] = 0
    with pytest.raises(Exception, match=r"training\.resume_every: must be a number of epochs N >= 1"):
        load_config(config)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("real_queues")
def test_a_resumed_sweep_trial_reports_each_epoch_to_its_pruner_once():
    from sweeps import study
    from sweeps.launching import launch_sweep
    from sweeps.models import Trial
    from sweeps.pruning import SweepPruning

    sweep = launch_sweep(
        {
            "base": tiny(),
            "parameters": {"model.network[0].units": {"choice": [4, 8]}},
            "method": "random",
            "trials": 2,
            "objective": {"metric": "val_loss", "direction": "minimize", "which": "best"},
            "pruner": {"type": "median", "startup_trials": 5},
        }
    )
    number, _ = study.ask(sweep, 0)
    trial = Trial.objects.create(sweep=sweep, number=0, optuna_number=number)
    first = SweepPruning(trial)
    first.on_train_begin()
    for epoch, value in enumerate([1.0, 0.5, 0.8]):  # its third epoch ends, and then its worker dies
        first.on_epoch_end(epoch, {"val_loss": value})
    again = SweepPruning(trial)  # the next attempt, from the state kept after epoch 2
    again.on_train_begin()
    for epoch, value in [(2, 0.9), (3, 0.7)]:  # epoch 3 trained again, with another value
        again.on_epoch_end(epoch, {"val_loss": value})
    reported = study.storage().get_trial(study.running_trial(sweep, number)._trial_id).intermediate_values
    # Each epoch once, the third as first reported; the fourth's best counts the epochs before the resume.
    assert reported == {1: 1.0, 2: 0.5, 3: 0.5, 4: 0.5}


def test_the_checkpoint_callbacks_best_carries_over_a_resume(tmp_path):
    # Saves only an epoch whose loss is higher than any before it: the first, then (the loss falling) none.
    best_only = {"type": "model_checkpoint", "save_best_only": True, "monitor": "loss", "mode": "max"}
    config = tiny(epochs=5, callbacks=[best_only])
    first = _run(tmp_path, config, (DiesAt(2),))
    again = _run(tmp_path, config, resume=first.path)
    assert again.succeeded, again.error
    saved = sorted(path.name for path in (first.path / "callbacks" / "model_checkpoint").iterdir())
    assert saved == ["weights.01.h5"]  # its best restarted at the resume, the 4th epoch would be saved too
