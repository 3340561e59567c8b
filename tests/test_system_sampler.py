"""The sampler in real training runs: samples at the interval, plausible values, epoch ends, whole lines after a
kill, the trackers' copies (MLflow under its system/ names, TensorBoard under system/), and its memory."""

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
import tracemalloc

import keras
import psutil
import pytest

from experiments.pipeline import load_config, run_experiment
from experiments.pipeline.system_metrics import GPUs, Probe, SystemSampler, interval_from_environment
from tests.helpers import ROOT, tiny
from tests.workers import wait_for

PAUSE = {"type": "lambda_callback", "on_epoch_end": "tests.hooks.pause"}
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - .* - Trainer - (.*)$", re.MULTILINE)


@pytest.fixture
def sampling(monkeypatch):
    """Sampling every 0.5 s, and epochs slowed to 0.4 s each (tests.hooks.pause) so a run lasts a few seconds."""
    monkeypatch.setenv("GYMNOS_SYSTEM_INTERVAL", "0.5")
    monkeypatch.setenv("GYMNOS_CALLBACK_MODULES", "tests.hooks")
    monkeypatch.setenv("GYMNOS_TEST_EPOCH_PAUSE", "0.4")


def lines_of(path):
    text = (path / "system_metrics.jsonl").read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def samples_of(lines):
    return [line for line in lines if "epoch_end" not in line and "started_at" not in line]


def log_seconds(path, start, end):
    """Seconds between the log lines that begin with ``start`` and ``end``: how long the sampler ran."""
    found = LOG_TIME.findall((path / "execution.log").read_text())

    def stamp(prefix):
        text = next(stamp for stamp, message in found if message.startswith(prefix))
        return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f")

    return (stamp(end) - stamp(start)).total_seconds()


def tensorflow_alone_mb():
    """The resident memory of a Python process that has only imported TensorFlow."""
    done = subprocess.run(
        [sys.executable, "-c", "import tensorflow, psutil; print(psutil.Process().memory_info().rss)"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    return int(done.stdout.strip().splitlines()[-1]) / 2**20


@pytest.mark.training
def test_a_run_records_a_sample_every_interval_and_marks_each_epoch(sampling, trainings, cache_dir):
    seen_while_training = []

    def read_the_file(epoch, logs):  # the file on disk, from inside the run: every line whole already
        if epoch == 5:
            seen_while_training.append(lines_of(path_of(trainings)))

    config = tiny(epochs=8, callbacks=[PAUSE])
    result = run_experiment(
        load_config(config),
        trainings,
        cache_dir,
        callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=read_the_file)],
    )
    assert result.succeeded, result.error
    lines = lines_of(result.path)
    header, samples = lines[0], samples_of(lines)
    assert header["time"] == 0
    assert header["interval"] == 0.5
    assert abs(header["started_at"] - time.time()) < 300
    duration = log_seconds(result.path, "Creating directory to save training results", "Execution finished: ")
    times = [sample["time"] for sample in samples]
    assert times == sorted(set(times))
    # On the 0.5 s grid: the n-th sample never comes before n intervals (no bursts), and at most
    # one tick in four is skipped (a starved thread skips a tick rather than sampling twice).
    assert all(time_ >= (n + 1) * 0.5 - 0.01 for n, time_ in enumerate(times)), times
    assert 0.75 * duration / 0.5 - 1 <= len(samples) <= duration / 0.5 + 1, (len(samples), duration)
    epochs = [line for line in lines if "epoch_end" in line]
    assert [line["epoch_end"] for line in epochs] == list(range(1, 9))
    assert all(0 < line["time"] <= duration for line in epochs)
    assert [line["time"] for line in epochs] == sorted(line["time"] for line in epochs)
    assert seen_while_training
    assert 1 <= len(samples_of(seen_while_training[0])) < len(samples)


def path_of(trainings):
    [folder] = (trainings / "boston_housing" / "executions").iterdir()
    return folder


@pytest.mark.training
def test_the_values_are_those_of_a_process_that_trains(sampling, trainings, cache_dir):
    result = run_experiment(load_config(tiny(epochs=6, callbacks=[PAUSE])), trainings, cache_dir)
    samples = samples_of(lines_of(result.path))
    assert len(samples) >= 3
    total_mb = psutil.virtual_memory().total / 2**20
    floor = tensorflow_alone_mb()
    for sample in samples:
        assert floor < sample["memory_mb"] < total_mb, (floor, sample)  # TensorFlow, plus the run itself
        assert 0 <= sample["cpu_percent"] <= 100 * psutil.cpu_count() * 1.1
        assert 0 <= sample["system_cpu_percent"] <= 100
        assert 0 < sample["system_memory_mb"] < total_mb
        assert 0 < sample["system_memory_percent"] < 100
        assert sample["disk_read_bytes_per_s"] >= 0
        assert sample["disk_write_bytes_per_s"] >= 0
    assert sum(sample["cpu_percent"] for sample in samples) > 0  # training keeps a core busy


@pytest.mark.training
def test_without_a_gpu_there_are_no_gpu_fields_and_no_error(sampling, trainings, cache_dir):
    if GPUs().handles:
        pytest.skip("this machine has a GPU: test_the_nvml_path_reads_every_gpu checks its fields")
    result = run_experiment(load_config(tiny(epochs=4, callbacks=[PAUSE])), trainings, cache_dir)
    assert result.succeeded
    samples = samples_of(lines_of(result.path))
    assert samples
    assert not any(key.startswith("gpu_") for sample in samples for key in sample)
    assert result.path is not None
    assert "WARNING" not in (result.path / "execution.log").read_text()


def test_the_nvml_path_reads_every_gpu():
    gpus = GPUs()
    if not gpus.handles:
        pytest.skip(
            f"no NVIDIA GPU with a driver here (NVML: {gpus.problem or 'no device'}); "
            "the GPU fields are unverified on this machine "
            "(checked on an H200 by `python -m bench.gpu_check`: docs/system.md)"
        )
    try:
        probe = Probe(gpus=gpus)
        time.sleep(0.2)
        sample = probe.read()
        for index in range(len(gpus.handles)):
            assert 0 <= sample[f"gpu_{index}_utilization_percent"] <= 100
            assert 0 < sample[f"gpu_{index}_memory_used_mb"] <= sample[f"gpu_{index}_memory_total_mb"]
    finally:
        gpus.close()


@pytest.mark.training
def test_sampling_off_writes_no_file(monkeypatch, trainings, cache_dir):
    monkeypatch.setenv("GYMNOS_SYSTEM_INTERVAL", "0")
    monkeypatch.setenv("GYMNOS_CALLBACK_MODULES", "tests.hooks")
    monkeypatch.setenv("GYMNOS_TEST_EPOCH_PAUSE", "0.3")
    result = run_experiment(load_config(tiny(epochs=3, callbacks=[PAUSE])), trainings, cache_dir)
    assert result.succeeded
    assert result.path is not None
    assert not (result.path / "system_metrics.jsonl").exists()


@pytest.mark.parametrize("value", ["often", "-1", "0.01", "nan", "1e9"])
def test_a_bad_interval_is_refused_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("GYMNOS_SYSTEM_INTERVAL", value)
    with pytest.raises(ValueError, match=r"GYMNOS_SYSTEM_INTERVAL is .*expected seconds between samples"):
        interval_from_environment()


def test_the_interval_defaults_to_five_seconds(monkeypatch):
    monkeypatch.delenv("GYMNOS_SYSTEM_INTERVAL", raising=False)
    assert interval_from_environment() == 5.0
    monkeypatch.setenv("GYMNOS_SYSTEM_INTERVAL", " 2.5 ")
    assert interval_from_environment() == 2.5


@pytest.mark.training
def test_a_bad_interval_fails_the_run_with_the_reason(monkeypatch, trainings, cache_dir):
    monkeypatch.setenv("GYMNOS_SYSTEM_INTERVAL", "often")
    result = run_experiment(load_config(tiny()), trainings, cache_dir)
    assert not result.succeeded
    assert result.error is not None
    assert "GYMNOS_SYSTEM_INTERVAL is 'often'" in result.error


@pytest.mark.training
def test_a_killed_run_leaves_only_whole_lines(tmp_path):
    """``manage.py train`` killed with SIGKILL mid-run: every line written before is there, whole."""
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(tiny(epochs=200, callbacks=[PAUSE])))
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'index.sqlite3'}",
        "GYMNOS_SYSTEM_INTERVAL": "0.1",
        "GYMNOS_CALLBACK_MODULES": "tests.hooks",
        "GYMNOS_TEST_EPOCH_PAUSE": "0.05",
    }
    trainings = tmp_path / "trainings"
    command = [sys.executable, str(ROOT / "manage.py"), "train", str(config_file), "--no-progress"]
    process = subprocess.Popen(
        [*command, "--trainings-root", str(trainings), "--cache-dir", str(tmp_path / "cache")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def sampled():
            files = list(trainings.glob("*/executions/*/system_metrics.jsonl"))
            text = files[0].read_text() if files else ""
            return text.count('"cpu_percent"') >= 10 and '"epoch_end"' in text and files[0]

        path = wait_for(sampled, timeout=180, message="ten samples and an epoch's end")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    data = path.read_bytes()
    assert data.endswith(b"\n")
    lines = [json.loads(line) for line in data.decode().splitlines()]
    assert len(samples_of(lines)) >= 10
    assert any("epoch_end" in line for line in lines)
    assert not (path.parent / "metrics.json").exists()  # it did die mid-run


@pytest.mark.training
def test_mlflow_and_tensorboard_record_every_sample(sampling, trainings, cache_dir, tmp_path):
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = tiny(
        epochs=6, callbacks=[PAUSE], trackers=[{"type": "mlflow", "tracking_uri": uri}, {"type": "tensorboard"}]
    )
    result = run_experiment(load_config(config), trainings, cache_dir)
    assert result.succeeded, result.error
    samples = samples_of(lines_of(result.path))
    assert len(samples) >= 3
    assert result.path is not None
    trackers = json.loads((result.path / "trackers.json").read_text())
    assert "error" not in trackers["mlflow"]
    assert "error" not in trackers["tensorboard"]

    # Every sample taken while the model trained; the last ones, taken while the trackers close, are the file's alone.
    last_epoch = max(line["time"] for line in lines_of(result.path) if "epoch_end" in line)
    while_training = sum(1 for sample in samples if sample["time"] <= last_epoch)

    def recorded(pairs, field):
        assert while_training <= len(pairs) <= len(samples)
        return pairs == [(i, pytest.approx(s[field], rel=1e-6)) for i, s in enumerate(samples[: len(pairs)], 1)]

    client = MlflowClient(uri)
    run_id = trackers["mlflow"]["run_id"]
    for name, field in (
        ("system/cpu_utilization_percentage", "system_cpu_percent"),
        ("system/system_memory_usage_megabytes", "system_memory_mb"),
        ("system/process_memory_usage_megabytes", "memory_mb"),
        ("system/process_cpu_utilization_percentage", "cpu_percent"),
    ):
        history = sorted(client.get_metric_history(run_id, name), key=lambda metric: metric.step)
        assert recorded([(m.step, m.value) for m in history], field), name
    assert len(client.get_metric_history(run_id, "loss")) == 6  # the epochs are still there, apart

    events = EventAccumulator(str(result.path / "tensorboard" / "system"), size_guidance={"scalars": 0}).Reload()
    assert recorded([(event.step, event.value) for event in events.Scalars("system/memory_mb")], "memory_mb")


def test_the_samplers_memory_stays_flat_over_ten_thousand_samples(tmp_path):
    """Nothing is kept per sample: what the process holds after 10,000 samples is what it held after 1,000."""
    tracemalloc.start()
    try:
        sampler = SystemSampler(tmp_path, 0.0005)
        sampler.start()
        wait_for(lambda: sampler.samples >= 1000, timeout=120, interval=0.01, message="1,000 samples")
        early = tracemalloc.get_traced_memory()[0]
        wait_for(lambda: sampler.samples >= 10_000, timeout=600, interval=0.05, message="10,000 samples")
        late = tracemalloc.get_traced_memory()[0]
        sampler.stop()
    finally:
        tracemalloc.stop()
    assert len(samples_of(lines_of(tmp_path))) >= 10_000
    assert late - early < 64 * 1024, (early, late)
