"""``manage.py sweep SWEEP.json``: runs a sweep to its end on the workers, and survives ``up`` restarting."""

import io
import json
import math
import signal
import sqlite3
import subprocess
import sys

import pytest

from sweeps.management.commands.sweep import run_sweep
from sweeps.models import Sweep
from tests.helpers import ROOT, stack_env, tiny
from tests.test_up import free_port
from tests.workers import WorkerProcess, flush, queues_at, wait_for, worker_env

pytestmark = pytest.mark.training


def write(tmp_path, document, name="sweep.json"):
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


@pytest.mark.django_db(transaction=True)
def test_it_runs_the_sweep_to_its_end_and_prints_the_best_trials_folder_last(tmp_path, settings):
    settings.RQ_QUEUES = queues_at()
    flush()
    worker = WorkerProcess(worker_env(tmp_path / "trainings", tmp_path / "cache"), tmp_path / "worker.log")
    try:
        path = write(
            tmp_path,
            {"name": "cli", "base": tiny(epochs=3), "parameters": {"model.network[0].units": {"choice": [2, 16]}},
             "method": "grid", "parallel": 2},
        )  # fmt: skip
        stdout, stderr = io.StringIO(), io.StringIO()
        code, sweep = run_sweep(str(path), stdout, stderr, poll=0.2)
        assert code == 0, stderr.getvalue()
        assert sweep is not None
        sweep.refresh_from_db()
        best = min(sweep.trials.all(), key=lambda trial: math.inf if trial.value is None else trial.value)
        assert best.execution is not None
        assert stdout.getvalue().splitlines()[-1] == best.execution.folder_path
        log = stderr.getvalue()
        assert log.startswith(f"Sweep {sweep.pk}: cli, 2 trials, at most 2 at once.")
        assert "trial 0 succeeded: val_loss" in log
        assert "trial 1 succeeded: val_loss" in log
        assert f"Sweep {sweep.pk} finished: 2 done, 0 pruned, 0 failed of 2." in log
    finally:
        worker.stop()
        flush()


@pytest.mark.django_db(transaction=True)
def test_an_invalid_document_lists_every_problem_and_starts_nothing(tmp_path, settings):
    settings.RQ_QUEUES = queues_at()
    path = write(tmp_path, {"base": tiny(), "parameters": {"training.epoch": {"choice": [1]}}, "method": "grdi"})
    stdout, stderr = io.StringIO(), io.StringIO()
    assert run_sweep(str(path), stdout, stderr) == (2, None)
    assert stderr.getvalue().splitlines() == [  # the document's own problem and its parameter's, at once
        f"Invalid sweep: 2 problems in {path}:",
        "  method: must be 'grid', 'random' or 'tpe', got \"grdi\"",
        "  parameters[\"training.epoch\"]: unknown key; did you mean 'epochs'? (expected one of: samples, batch_size, "
        "epochs, shuffle, seed, callbacks, log_every_steps, resume_every) (at training.epoch in the base config)",
    ]
    assert run_sweep(str(tmp_path / "missing.json"), stdout, stderr)[0] == 2
    assert "cannot read" in stderr.getvalue()
    assert stdout.getvalue() == ""
    assert Sweep.objects.count() == 0


def test_a_sweep_survives_up_restarting_and_the_command_follows_it_to_the_end(tmp_path):
    env = stack_env(tmp_path, GYMNOS_TEST_EPOCH_PAUSE="0.5")
    manage = [sys.executable, str(ROOT / "manage.py")]
    logs: list[str] = []

    def start_up():
        log = tmp_path / f"up-{len(logs)}.log"
        logs.append(log)
        process = subprocess.Popen(
            [*manage, "up", "--bind", f"127.0.0.1:{free_port()}"], cwd=ROOT, env=env,
            stdout=open(log, "wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for(lambda: b"Gymnos is up" in log.read_bytes() or process.poll() is not None, 360, message="up")
        assert process.poll() is None, log.read_text()[-3000:]
        return process

    def rows():
        with sqlite3.connect(tmp_path / "var" / "gymnos.sqlite3") as db:
            return db.execute(
                "select t.number, e.status, e.error from sweeps_trial t left join experiments_execution e "
                "on e.id = t.execution_id order by t.number"
            ).fetchall()

    slow = tiny(epochs=12, callbacks=[{"type": "lambda_callback", "on_epoch_end": "tests.hooks.pause"}])
    path = write(
        tmp_path,
        {"base": slow, "parameters": {"model.network[0].units": {"choice": [4, 8]}}, "method": "grid", "parallel": 1},
    )
    up = start_up()
    follower = subprocess.Popen(
        [*manage, "sweep", str(path), "--no-progress", "--poll", "0.5"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=open(tmp_path / "sweep.log", "wb"),
    )  # fmt: skip
    try:
        wait_for(lambda: rows() and rows()[0][1] == "running", timeout=120, message="the first trial training")
        up.send_signal(signal.SIGINT)
        assert up.wait(60) == 0
        assert rows()[0][1] == "cancelled"
        assert "manage.py up" in rows()[0][2]
        up = start_up()
        out, _ = follower.communicate(timeout=240)
        log = (tmp_path / "sweep.log").read_text()
        assert follower.returncode == 0, log
        assert [row[1] for row in rows()] == ["cancelled", "succeeded"]
        with sqlite3.connect(tmp_path / "var" / "gymnos.sqlite3") as db:
            (folder,) = db.execute(
                "select folder_path from experiments_execution e join sweeps_trial t on t.execution_id = e.id "
                "where t.number = 1"
            ).fetchone()
        assert out.decode().splitlines()[-1] == folder
        assert "trial 0 cancelled" in log
        assert "trial 1 succeeded" in log
    finally:
        if follower.poll() is None:
            follower.kill()
        up.send_signal(signal.SIGINT)
        up.wait(60)
