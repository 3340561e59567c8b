"""Per-step metrics (#27): training.log_every_steps writes steps.h5; it is read by range, downsampled by M4
keeping every bucket's extremes, served by the API, and sync indexes its summary only."""

import json
import math
import signal
import subprocess
import sys

import h5py
import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.index.sync import sync_trainings
from experiments.models import Execution
from experiments.pipeline import ConfigError, load_config, run_experiment
from experiments.pipeline.steps import STEPS_FILE, StepWriter, bucket_edges, m4_indices, read_series
from experiments.steps import read_steps
from tests.helpers import tiny


def _stepped(epochs=2, every=1):
    config = tiny(epochs=epochs)
    config["training"]["log_every_steps"] = every
    return config


def test_it_refuses_a_negative_interval_naming_the_option():
    config = _stepped(every=-1)
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert "training.log_every_steps" in str(caught.value)


def test_a_run_without_the_option_writes_no_steps_file(trainings, cache_dir):
    result = run_experiment(load_config(tiny(epochs=1)), trainings, cache_dir)
    assert result.succeeded
    assert result.path is not None
    assert not (result.path / STEPS_FILE).exists()


def test_a_tiny_training_writes_one_point_per_step_and_each_epoch_ends_on_its_metrics_json_value(
    trainings, cache_dir, settings
):
    settings.GYMNOS_TRAININGS_ROOT = trainings
    result = run_experiment(load_config(_stepped(epochs=2)), trainings, cache_dir)
    assert result.succeeded
    assert result.path is not None
    series = read_steps(result.path, "loss", points=10_000)
    per_epoch = series["epochs"][0]
    assert series["epochs"] == [per_epoch, 2 * per_epoch]
    assert series["step"] == list(range(1, 2 * per_epoch + 1))  # steps x epochs points, none missing
    history = json.loads((result.path / "metrics.json").read_text())["metrics"]["loss"]
    at_epoch_ends = [series["value"][step - 1] for step in series["epochs"]]
    assert at_epoch_ends == pytest.approx(history)
    assert series["downsampled"] is False


def test_tensorboard_and_mlflow_get_every_step_point_as_steps_metrics(trainings, cache_dir, tmp_path):
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trackers = [{"type": "tensorboard"}, {"type": "mlflow", "tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}]
    config = _stepped(epochs=2)
    config["tracking"]["trackers"] = trackers
    result = run_experiment(load_config(config), trainings, cache_dir)
    assert result.succeeded, result.error
    assert result.path is not None
    series = read_steps(result.path, "loss", points=10_000)
    expected = list(zip(series["step"], series["value"], strict=True))
    assert len(expected) == series["epochs"][-1]  # one point per step of both epochs

    events = EventAccumulator(str(result.path / "tensorboard" / "steps"), size_guidance={"scalars": 0}).Reload()
    assert [(event.step, event.value) for event in events.Scalars("steps/loss")] == [
        (step, pytest.approx(value, rel=1e-6)) for step, value in expected
    ]
    location = json.loads((result.path / "trackers.json").read_text())["mlflow"]
    history = MlflowClient(location["tracking_uri"]).get_metric_history(location["run_id"], "steps/loss")
    assert sorted((metric.step, metric.value) for metric in history) == [
        (step, pytest.approx(value, rel=1e-9)) for step, value in expected
    ]
    epochs = MlflowClient(location["tracking_uri"]).get_metric_history(location["run_id"], "loss")
    assert [metric.step for metric in epochs] == [1, 2]  # the per-epoch history stays as it was


def test_a_trackers_share_of_a_big_flush_is_thinned_and_keeps_its_spike(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from experiments.pipeline.trackers import STEP_POINTS, RunInfo, TensorBoardSpec, TensorBoardTracker, TrackerSet

    trackers = TrackerSet([TensorBoardTracker(TensorBoardSpec(type="tensorboard"))])
    trackers.start(RunInfo(tmp_path, "thin", tmp_path, {}, {}, []))
    writer = StepWriter(tmp_path / STEPS_FILE, flush_points=10**9, flush_seconds=10**9, on_flush=trackers.log_steps)
    for step in range(1, 5001):
        writer.append(step, {"loss": 1000.0 if step == 3217 else 1.0 / step})
    writer.close()
    trackers.end("FINISHED")
    events = EventAccumulator(str(tmp_path / "tensorboard" / "steps"), size_guidance={"scalars": 0}).Reload()
    drawn = {event.step: event.value for event in events.Scalars("steps/loss")}
    assert len(drawn) <= STEP_POINTS
    assert drawn[3217] == 1000.0  # the spike
    assert {1, 5000} <= set(drawn)  # the flush's first and last
    assert read_steps(tmp_path, "loss", points=10_000)["count"] == 5000  # the file keeps every point


def test_points_are_readable_while_the_run_trains(trainings, cache_dir):
    seen = []

    class Reader(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:  # the first epoch's points were flushed at its end
                folder = next(trainings.glob("*/executions/*"))
                seen.append(read_steps(folder, "loss", points=10_000))

    result = run_experiment(load_config(_stepped(epochs=3)), trainings, cache_dir, callbacks=[Reader()])
    assert result.succeeded
    assert len(seen) == 1
    assert seen[0]["epochs"] == [seen[0]["count"]]  # all of epoch 1, read while epoch 2 was ending
    assert seen[0]["count"] > 0


def test_a_run_that_fails_mid_training_keeps_the_points_it_logged(trainings, cache_dir):
    class Crash(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("the machine fell over")

    result = run_experiment(load_config(_stepped(epochs=3)), trainings, cache_dir, callbacks=[Crash()])
    assert not result.succeeded
    assert result.path is not None
    series = read_steps(result.path, "loss", points=10_000)
    assert len(series["epochs"]) == 1
    assert series["count"] == series["epochs"][0]


def _synthetic(path, count, spike_at=None, every=1):
    writer = StepWriter(path, flush_points=50_000)
    for step in range(every, count * every + 1, every):
        value = 100.0 if step == spike_at else math.sin(step / 50)
        writer.append(step, {"loss": value})
    writer.epoch_end(count * every)
    writer.close()


# A writer that flushes every 100 points, killed (SIGKILL) with ten more points buffered.
KILLED_WRITER = """
import os, signal, sys
from experiments.pipeline.steps import StepWriter
writer = StepWriter(sys.argv[1], flush_points=100, flush_seconds=3600)
for step in range(1, 111):
    writer.append(step, {"loss": float(step)})
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_writer_leaves_what_it_flushed_readable(tmp_path, settings):
    settings.GYMNOS_TRAININGS_ROOT = tmp_path
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path / STEPS_FILE)], timeout=120, check=False)
    assert done.returncode == -signal.SIGKILL
    series = read_steps(tmp_path, "loss", points=10_000)
    assert series["step"] == list(range(1, 101))  # the flushed hundred; the ten buffered after are lost
    assert series["value"] == [float(step) for step in range(1, 101)]


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=400),
    buckets=st.integers(1, 50),
)
def test_m4_keeps_every_buckets_lowest_and_highest_value(values, buckets):
    array = np.asarray(values)
    kept = set(m4_indices(array, buckets).tolist())
    edges = bucket_edges(len(array), min(buckets, len(array)))
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        if high > low:
            part = array[low:high]
            in_bucket = [array[i] for i in kept if low <= i < high]
            assert part.min() in in_bucket
            assert part.max() in in_bucket
    assert len(kept) <= 4 * buckets


@settings(max_examples=30, deadline=None)
@given(count=st.integers(1, 3000), every=st.integers(1, 5), start=st.integers(-10, 16000), span=st.integers(0, 16000))
def test_a_range_at_full_resolution_is_exactly_the_points_in_it(tmp_path_factory, count, every, start, span):
    path = tmp_path_factory.mktemp("steps") / STEPS_FILE
    _synthetic(path, count, every=every)
    end = start + span
    with open(path, "rb") as handle, h5py.File(handle, "r") as document:
        series = read_series(document, "loss", start, end, points=10_000)
    expected = [step for step in range(every, count * every + 1, every) if start <= step <= end]
    assert series["step"] == expected
    assert series["downsampled"] is False


@pytest.fixture
def spiky(tmp_path, settings, db):
    from experiments.models import Experiment

    settings.GYMNOS_TRAININGS_ROOT = tmp_path
    folder = tmp_path / "boston_housing" / "executions" / "06-16-31__27-11-2026"
    folder.mkdir(parents=True)
    _synthetic(folder / STEPS_FILE, 200_000, spike_at=123_457)
    experiment = Experiment.objects.create(name="boston_housing")
    return Execution.objects.create(
        experiment=experiment, folder_name=folder.name, folder_path=str(folder), status=Execution.Status.SUCCEEDED
    )


@pytest.mark.django_db
def test_the_api_sends_a_downsampled_series_with_the_spike_and_a_zoom_at_full_resolution(client, viewer, spiky):
    client.force_login(viewer)
    url = f"/api/executions/{spiky.pk}/metrics/loss/steps"
    first = client.get(url).json()
    assert first["downsampled"] is True
    assert len(first["step"]) <= 2000
    assert 100.0 in first["value"]
    assert first["step"][first["value"].index(100.0)] == 123_457
    zoom = client.get(url, {"from": 123_000, "to": 124_000, "points": 2000}).json()
    assert zoom["downsampled"] is False
    assert zoom["step"] == list(range(123_000, 124_001))
    assert zoom["value"][457] == 100.0


@pytest.mark.django_db
def test_the_api_bounds_points_and_says_404_for_a_metric_not_logged(client, viewer, spiky):
    client.force_login(viewer)
    url = f"/api/executions/{spiky.pk}/metrics/loss/steps"
    assert client.get(url, {"points": 5}).status_code == 422
    assert client.get(url, {"points": 10_001}).status_code == 422
    assert client.get(f"/api/executions/{spiky.pk}/metrics/accuracy/steps").status_code == 404
    assert client.get(f"/api/executions/{spiky.pk}/metrics/..%2F..%2Fetc/steps").status_code == 404
    assert client.get(f"/api/executions/{spiky.pk}/metrics/loss%2Fstep/steps").status_code == 404


@pytest.mark.django_db
def test_step_series_need_a_login_as_the_runs_other_data_do(client, spiky):
    assert client.get(f"/api/executions/{spiky.pk}/metrics/loss/steps").status_code == 401


@pytest.mark.django_db
def test_sync_indexes_each_metrics_summary_and_no_series(spiky, settings):
    sync_trainings(settings.GYMNOS_TRAININGS_ROOT)
    spiky.refresh_from_db()
    assert spiky.steps["loss"]["count"] == 200_000
    assert spiky.steps["loss"]["max"] == 100.0
    assert spiky.steps["loss"]["last"] == pytest.approx(math.sin(200_000 / 50))
    assert not spiky.histories.filter(name__contains="loss").exists()


@pytest.mark.django_db
def test_the_api_lists_a_runs_step_metrics_from_its_file(client, viewer, spiky):
    client.force_login(viewer)
    listed = client.get(f"/api/executions/{spiky.pk}/steps").json()["metrics"]
    assert list(listed) == ["loss"]
    assert listed["loss"]["count"] == 200_000
    assert listed["loss"]["max"] == 100.0


@pytest.mark.django_db
def test_the_run_page_has_step_charts_for_a_live_run_that_logs_steps_and_none_without(client, owner, spiky):
    from tests.folders import permalink

    client.force_login(owner)
    Execution.objects.filter(pk=spiky.pk).update(status=Execution.Status.RUNNING, config=_stepped())
    assert 'id="steps"' in client.get(permalink(spiky)).content.decode()
    Execution.objects.filter(pk=spiky.pk).update(status=Execution.Status.SUCCEEDED, config=tiny(), steps={})
    assert 'id="steps"' not in client.get(permalink(spiky)).content.decode()
