"""System metrics through real workers: recorded while a run trains, served live, indexed when it ends, kept whole
when it is cancelled mid-way; and the queue page showing each worker machine's figures from its heartbeat."""

import json
import re

import psutil
import pytest
from django.test import Client

from experiments.jobs import launching
from experiments.models import Execution, MetricHistory
from tests.helpers import tiny
from tests.workers import WorkerProcess, flush, queues_at, wait_for, worker_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.training]


def slow(epochs):
    return tiny(epochs=epochs, callbacks=[{"type": "lambda_callback", "on_epoch_end": "tests.hooks.pause"}])


@pytest.fixture
def worker(settings, tmp_path, monkeypatch):
    """One real worker sampling every 0.5 s, whose epochs last 0.5 s."""
    monkeypatch.setenv("GYMNOS_CALLBACK_MODULES", "tests.hooks")
    settings.RQ_QUEUES = queues_at()
    settings.GYMNOS_TRAININGS_ROOT = tmp_path / "trainings"
    flush()
    env = worker_env(
        tmp_path / "trainings", tmp_path / "cache", GYMNOS_SYSTEM_INTERVAL="0.5", GYMNOS_TEST_EPOCH_PAUSE="0.5"
    )
    process = WorkerProcess(env, tmp_path / "worker.log")
    yield process
    process.stop()
    flush()
    print("worker log (tail):\n" + (tmp_path / "worker.log").read_text(errors="replace")[-3000:])


@pytest.fixture
def watcher(owner):
    client = Client()
    client.force_login(owner)
    return client


def lines_of(path):
    text = open(path).read()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_a_worker_run_is_sampled_served_while_it_trains_and_indexed_when_it_ends(worker, watcher):
    worker.wait_ready()
    execution = launching.launch(slow(epochs=10))

    def poll(offset=None):
        return watcher.get(f"/executions/{execution.pk}/system.json" + (f"?offset={offset}" if offset else "")).json()

    def live_points():
        data = poll()
        return data if data["live"] and len(data["series"].get("memory_mb", {}).get("x", [])) >= 2 else None

    first = wait_for(live_points, timeout=120, message="two samples served while the run trains")
    assert first["source"] == "file"
    assert first["interval"] == 0.5
    more = wait_for(lambda: (data := poll(first["offset"]))["series"] and data, timeout=60, message="more samples")
    assert more["append"]
    assert more["offset"] > first["offset"]

    wait_for(lambda: Execution.objects.get(pk=execution.pk).status != "running", timeout=120, message="run ended")
    execution.refresh_from_db()
    assert execution.status == "succeeded", execution.error
    samples = [line for line in lines_of(f"{execution.folder_path}/system_metrics.jsonl") if "memory_mb" in line]
    assert execution.system["samples"] == len(samples) >= 5
    assert execution.system["peak_memory_mb"] == max(sample["memory_mb"] for sample in samples)
    assert 0 < execution.system["mean_cpu_percent"]
    assert "mean_gpu_percent" not in execution.system
    indexed = dict(MetricHistory.objects.filter(execution=execution).values_list("name", "values"))
    assert indexed["system/time"] == [sample["time"] for sample in samples]
    assert len(indexed["system/epoch_end"]) == 10
    api = watcher.get(f"/api/executions/{execution.pk}/system").json()
    assert api["source"] == "index"
    assert api["series"]["memory_mb"] == [sample["memory_mb"] for sample in samples]


def test_a_run_cancelled_mid_way_keeps_a_file_of_whole_lines_and_it_is_indexed(worker, watcher):
    worker.wait_ready()
    execution = launching.launch(slow(epochs=200))

    def sampled():
        execution.refresh_from_db()
        data = watcher.get(f"/executions/{execution.pk}/system.json").json()
        return len(data["series"].get("memory_mb", {}).get("x", [])) >= 4 and data["epoch_ends"]

    wait_for(sampled, timeout=120, message="four samples and an epoch's end")
    assert launching.cancel(execution)
    wait_for(
        lambda: Execution.objects.get(pk=execution.pk).system.get("samples"), timeout=60, message="indexed after cancel"
    )
    execution.refresh_from_db()
    assert execution.status == "cancelled"
    lines = lines_of(f"{execution.folder_path}/system_metrics.jsonl")  # ends with a newline: every line whole
    samples = [line for line in lines if "memory_mb" in line]
    assert execution.system["samples"] == len(samples) >= 4
    assert execution.error.count("system_metrics") == 0
    data = watcher.get(f"/executions/{execution.pk}/system.json").json()
    assert data["source"] == "index"
    assert data["series"]["memory_mb"]["y"] == [s["memory_mb"] for s in samples]


def test_the_queue_page_shows_each_worker_machines_figures(worker, watcher):
    worker.wait_ready()

    def figures():
        page = watcher.get("/queue/fragment/").content.decode()
        cell = re.search(rf'data-worker="{worker.name}">(.*?)</td>', page, re.DOTALL)
        return cell and "CPU" in cell.group(1) and cell.group(1)

    cell = wait_for(figures, timeout=60, message="the worker's machine on the queue page")
    total_gb = psutil.virtual_memory().total / 2**30
    assert f"of {psutil.cpu_count()} cores" in cell
    assert re.search(rf"memory <strong>[\d.]+</strong> of {total_gb:.1f} GB \(\d+%\)", cell), cell
    assert "s ago" in cell
    assert "GPU" not in cell
    full = watcher.get("/queue/").content.decode()
    assert "<th>Machine</th>" in full
    assert f'data-worker="{worker.name}"' in full
