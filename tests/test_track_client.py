"""The tracking client (gymnos_track): a script's run folder, synced, reads as the engine's does."""

import json
import math
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest

import gymnos_track
import gymnos_track.live
from experiments.files import list_downloads
from experiments.index.sync import sync_trainings
from experiments.models import Execution
from experiments.pipeline import jsonlimits, load_config, run_experiment
from experiments.steps import read_steps
from gymnos_track.run import MAX_CONFIG_BYTES, MAX_CONFIG_DEPTH, TrackError
from tests.helpers import ROOT, tiny

FRAMEWORKS = ("django", "tensorflow", "keras", "torch")


def _only(experiment):
    return Execution.objects.get(experiment__name=experiment)


def test_importing_the_client_imports_no_framework():
    code = (
        "import sys, gymnos_track, gymnos_track.run, gymnos_track.layout\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FRAMEWORKS!r}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_its_bounds_are_the_launchs():
    assert (MAX_CONFIG_BYTES, MAX_CONFIG_DEPTH) == (jsonlimits.MAX_BYTES, jsonlimits.MAX_DEPTH)


@pytest.mark.django_db
@pytest.mark.training
def test_a_scripts_folder_syncs_as_the_engine_writes_it(tmp_path):
    root = tmp_path / "trainings"
    engine = run_experiment(load_config(json.dumps(tiny(epochs=3))), root, tmp_path / "cache")
    assert engine.succeeded
    assert engine.path is not None
    written = json.loads((engine.path / "metrics.json").read_text())["metrics"]
    epochs = {name: values for name, values in written.items() if not name.startswith("test_")}

    with gymnos_track.start(experiment="script", config={"lr": 0.01}, tags=["baseline"], root=root) as run:
        for epoch in range(3):
            run.log({name: values[epoch] for name, values in epochs.items()}, epoch=epoch)
        run.log_test({name[len("test_") :]: values[0] for name, values in written.items() if name.startswith("test_")})

    report = sync_trainings(root)
    assert report.line() == "indexed 2, unchanged 0, errors 0", report.problems
    ours, theirs = _only("script"), _only("boston_housing")
    assert ours.status == theirs.status == Execution.Status.SUCCEEDED
    assert ours.error == theirs.error == ""
    assert set(ours.summary) == set(theirs.summary)
    assert ours.summary == theirs.summary
    for name in written:
        assert ours.history(name) == theirs.history(name) == written[name]
    for field in ("epochs", "final_loss", "final_val_loss", "best_val_loss", "test_loss"):
        assert getattr(ours, field) == getattr(theirs, field), field
    assert ours.title == "script"
    assert ours.tags == ["baseline"]
    assert ours.params["lr"] == 0.01
    assert ours.started_at <= ours.finished_at
    assert "Execution finished" in (run.path / "execution.log").read_text()


SCRIPT = textwrap.dedent(
    """
    import sys, time, gymnos_track
    run = gymnos_track.start(experiment="killed", root=sys.argv[1], flush_seconds=0)
    for epoch in range(3):
        run.log({"loss": 1.0 / (epoch + 1)})
    print(run.path, flush=True)
    time.sleep(60)
    """
)


@pytest.mark.django_db
def test_a_script_killed_mid_run_is_running_then_failed_with_what_it_logged(tmp_path):
    root = tmp_path / "trainings"
    root.mkdir()
    script = subprocess.Popen([sys.executable, "-c", SCRIPT, str(root)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert script.stdout is not None
    try:
        folder = script.stdout.readline().strip()
        assert folder, "the script did not start its run"
        sync_trainings(root)
        running = _only("killed")
        assert running.status == Execution.Status.RUNNING
        assert running.history("loss") == [1.0, 0.5, 1 / 3]
    finally:
        os.kill(script.pid, signal.SIGKILL)
        script.wait()
        script.stdout.close()

    assert sync_trainings(root).line() == "indexed 1, unchanged 0, errors 0"
    killed = _only("killed")
    assert killed.status == Execution.Status.FAILED
    assert "the script stopped before it finished the run (its process is gone)" in killed.error
    assert killed.history("loss") == [1.0, 0.5, 1 / 3]
    assert killed.finished_at is None
    for name in ("metrics.json", "training_config.json", "track.json"):
        json.loads(open(os.path.join(folder, name)).read())  # whole, never half-written


@pytest.mark.django_db
def test_a_crash_inside_the_run_is_recorded_as_failed_with_its_traceback(tmp_path):
    root = tmp_path / "trainings"
    with pytest.raises(ZeroDivisionError), gymnos_track.start(experiment="crash", root=root) as run:
        run.log({"loss": 0.5})
        1 / 0  # noqa: B018
    sync_trainings(root)
    crashed = _only("crash")
    assert crashed.status == Execution.Status.FAILED
    assert crashed.error.startswith("ZeroDivisionError: division by zero")
    assert crashed.history("loss") == [0.5]
    log = (run.path / "execution.log").read_text()
    assert "Traceback" in log
    assert log.rstrip().endswith("Execution failed: ZeroDivisionError: division by zero")


@pytest.mark.django_db
def test_nan_and_gaps_are_kept_as_the_engine_keeps_them(tmp_path):
    root = tmp_path / "trainings"
    with gymnos_track.start(experiment="gaps", root=root) as run:
        run.log({"loss": 1.0}, epoch=0)
        run.log({"loss": math.inf, "val_loss": 2.0}, epoch=2)
    assert "Infinity" in (run.path / "metrics.json").read_text()
    sync_trainings(root)
    execution = _only("gaps")
    assert execution.status == Execution.Status.SUCCEEDED
    assert execution.history("loss") == [1.0, None, None]
    assert execution.history("val_loss") == [None, None, 2.0]
    assert "loss is NaN or Infinity at epoch 2, 3" in execution.error


@pytest.mark.django_db
def test_an_artifact_is_offered_for_download(tmp_path, settings):
    model = tmp_path / "model.pt"
    model.write_bytes(b"weights")
    root = settings.GYMNOS_TRAININGS_ROOT = tmp_path / "trainings"
    with gymnos_track.start(experiment="artifacts", root=root) as run:
        run.log({"loss": 1.0})
        assert run.log_artifact(model) == run.path / "artifacts" / "model.pt"
    sync_trainings(root)
    execution = _only("artifacts")
    assert {"path": "artifacts/model.pt", "bytes": 7} in execution.artifacts
    assert "artifacts/model.pt" in [item["path"] for item in list_downloads(execution)]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda run: run.log({"val loss": 1.0}), "the metric name 'val loss' has a character other than"),
        (lambda run: run.log({"loss": "high"}), "loss='high': expected a number"),
        (lambda run: run.log({"loss": True}), "expected a number, not a boolean"),
        (lambda run: run.log({"loss": 1.0}, epoch=-1), "epoch=-1: expected an integer from 0"),
        (lambda run: run.log({f"m{i}": 1.0 for i in range(1001)}), "at most 1,000"),
        (lambda run: run.log_artifact(__file__, name="../escape"), "expected a plain file name"),
        (lambda run: run.log_artifact(__file__, name="a\nb"), "has a control character"),
        (lambda run: run.log_artifact(__file__, name="metrics.json"), "one of the run's own files"),
    ],
)
def test_what_a_folder_cannot_hold_is_refused_naming_it(tmp_path, call, message):
    run = gymnos_track.start(experiment="bounds", root=tmp_path)
    with pytest.raises(TrackError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(run)
    assert run.metrics == {}  # nothing of a refused call is kept
    run.finish()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"experiment": "../up"}, "names a folder"),
        ({"experiment": "ok", "config": {"experiment": {}}}, "config has an 'experiment' key"),
        ({"experiment": "ok", "config": {"x": {1, 2}}}, "config is not JSON"),
        ({"experiment": "ok", "config": {"x": "a" * (1 << 20)}}, "at most 1,048,576"),
        ({"experiment": "ok", "tags": "one"}, "not one string"),
    ],
)
def test_a_bad_start_is_refused_before_any_folder_is_made(tmp_path, kwargs, message):
    with pytest.raises(TrackError, match=message):
        gymnos_track.start(root=tmp_path, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_a_config_nested_too_deep_is_refused(tmp_path):
    deep: dict[str, Any] = {}
    inner = deep
    for _ in range(100):
        inner["x"] = {}
        inner = inner["x"]
    with pytest.raises(TrackError, match="nested deeper than 64"):
        gymnos_track.start(experiment="deep", config=deep, root=tmp_path)


@pytest.mark.django_db
@pytest.mark.training
def test_the_keras_callback_logs_each_epoch_of_fit(tmp_path):
    import keras
    import numpy as np

    root = tmp_path / "trainings"
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    X, y = np.ones((8, 3)), np.ones((8, 1))
    with gymnos_track.start(experiment="fit", root=root) as run:
        history = model.fit(X, y, epochs=2, validation_split=0.25, verbose=0, callbacks=[run.keras_callback()])
    assert isinstance(run.keras_callback(), gymnos_track.KerasCallback)
    sync_trainings(root)
    execution = _only("fit")
    assert execution.status == Execution.Status.SUCCEEDED
    assert execution.epochs == 2
    assert execution.history("loss") == pytest.approx(history.history["loss"])
    assert execution.history("val_loss") == pytest.approx(history.history["val_loss"])


def test_no_thread_is_started_unless_live_is_asked_for(tmp_path):
    before = threading.active_count()
    with gymnos_track.start(experiment="quiet", root=tmp_path) as run:
        run.log({"loss": 1.0})
        assert threading.active_count() == before
        assert run.live is None


def test_a_live_server_that_never_answers_delays_nothing_and_the_log_says_what_was_not_sent(tmp_path, monkeypatch):
    monkeypatch.setattr(gymnos_track.live, "RETRY", (0.05, 0.1))
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = gymnos_track.start(experiment="offline", root=tmp_path, live=f"http://127.0.0.1:{port}/publish/epoch/end/x/")
    started = time.perf_counter()
    run.log({"loss": 1.0})
    run.log({"loss": 0.5})
    assert time.perf_counter() - started < 1  # not waiting on the stream's retries
    run.finish()
    assert time.perf_counter() - started < 10  # finish waits a bounded time (2 s), not for the server
    assert run.live is not None
    assert not run.live.thread.is_alive()
    assert "Live stream: 2 epoch(s) not sent (ConnectionRefusedError" in (run.path / "execution.log").read_text()
    assert json.loads((run.path / "metrics.json").read_text())["metrics"]["loss"] == [1.0, 0.5]  # the folder has them


@pytest.mark.django_db
@pytest.mark.training
def test_per_step_values_sync_as_the_engines_step_metrics(tmp_path):
    root = tmp_path / "trainings"
    config = tiny(epochs=2)
    config["training"]["log_every_steps"] = 1
    engine = run_experiment(load_config(json.dumps(config)), root, tmp_path / "cache")
    assert engine.succeeded
    assert engine.path is not None
    names = ("loss", "mean_absolute_error")
    theirs = {name: read_steps(engine.path, name, points=10_000) for name in names}
    history = json.loads((engine.path / "metrics.json").read_text())["metrics"]
    ends = theirs["loss"]["epochs"]

    with gymnos_track.start(experiment="script", root=root) as run:
        for step in theirs["loss"]["step"]:
            run.log({name: theirs[name]["value"][step - 1] for name in names}, step=step)
            if step in ends:
                epoch = ends.index(step)
                run.log({name: history[name][epoch] for name in names}, epoch=epoch)
        with pytest.raises(TrackError, match="step 1 is before step"):
            run.log({"loss": 1.0}, step=1)
        with pytest.raises(TrackError, match="give one of them"):
            run.log({"loss": 1.0}, epoch=2, step=99)

    assert sync_trainings(root).line() == "indexed 2, unchanged 0, errors 0"
    ours, engines = _only("script"), _only("boston_housing")
    assert ours.steps == engines.steps
    assert set(ours.steps) == set(names)
    for name in names:
        assert read_steps(run.path, name, points=10_000) == theirs[name]
    assert ours.history("loss") == history["loss"]


def test_per_step_logging_imports_h5py_only_when_a_step_is_logged(tmp_path):
    code = (
        "import sys, gymnos_track\n"
        f"run = gymnos_track.start(experiment='s', root={str(tmp_path)!r})\n"
        "run.log({'loss': 1.0})\n"
        "print('h5py' in sys.modules)\n"
        "run.log({'loss': 0.5}, step=1)\n"
        "run.finish()\n"
        f"print('h5py' in sys.modules, sorted(m for m in sys.modules if m.split('.')[0] in {FRAMEWORKS!r}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.split("\n")[:2] == ["False", "True []"]
