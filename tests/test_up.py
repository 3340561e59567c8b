"""``manage.py up``: the embedded stack starts, trains a queued run, and stops with no leftovers."""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import psutil
import pytest

from tests.helpers import ROOT, tiny
from tests.workers import wait_for

pytestmark = pytest.mark.training


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def up(tmp_path):
    """Start ``manage.py up`` on its own var/ (embedded Redis, SQLite), return a handle."""
    started = []

    def start(*configs, extra_env=None):
        files = []
        for index, config in enumerate(configs):
            path = tmp_path / f"config-{index}.json"
            path.write_text(json.dumps(config))
            files += ["--enqueue", str(path)]
        env = {key: value for key, value in os.environ.items() if key not in {"REDIS_URL", "DATABASE_URL"}}
        env.update(
            GYMNOS_VAR_DIR=str(tmp_path / "var"),
            GYMNOS_TRAININGS_ROOT=str(tmp_path / "trainings"),
            GYMNOS_CACHE_DIR=str(tmp_path / "cache"),
            GYMNOS_CALLBACK_MODULES="tests.hooks",
            PYTHONUNBUFFERED="1",
            **(extra_env or {}),
        )
        port = free_port()
        log = open(tmp_path / "up.log", "wb")
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "up", "--bind", f"127.0.0.1:{port}", *files],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        wait_for(
            lambda: b"Gymnos is up" in (tmp_path / "up.log").read_bytes() or process.poll() is not None,
            timeout=120,
            message="up started",
        )
        assert process.poll() is None, (tmp_path / "up.log").read_text()[-3000:]
        return process, port

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()


def statuses(tmp_path):
    with sqlite3.connect(tmp_path / "var" / "gymnos.sqlite3") as db:
        return dict(db.execute("select id, status from experiments_execution"))


def descendants(pid):
    return [child.pid for child in psutil.Process(pid).children(recursive=True)]


def test_up_trains_a_queued_run_and_ctrl_c_stops_every_child(up, tmp_path):
    process, port = up(tiny(epochs=2))
    children = descendants(process.pid)
    assert len(children) >= 3  # redis-server, a worker, the web server
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    wait_for(lambda: statuses(tmp_path).get(1) == "succeeded", timeout=120, message="queued example trained")

    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 0
    time.sleep(0.5)
    assert [
        pid for pid in children if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ] == []
    assert "Stopped." in (tmp_path / "up.log").read_text()


def test_stopping_up_mid_run_leaves_no_execution_running(up, tmp_path):
    slow = tiny(epochs=60, callbacks=[{"type": "lambda_callback", "on_epoch_end": "tests.hooks.pause"}])
    process, _ = up(slow, extra_env={"GYMNOS_TEST_EPOCH_PAUSE": "0.5"})
    wait_for(lambda: statuses(tmp_path).get(1) == "running", timeout=120, message="run started")
    time.sleep(2)
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0
    assert statuses(tmp_path)[1] == "cancelled"
    with sqlite3.connect(tmp_path / "var" / "gymnos.sqlite3") as db:
        error, folder = db.execute("select error, folder_path from experiments_execution where id = 1").fetchone()
    assert "manage.py up" in error and os.path.isfile(os.path.join(folder, "execution.log"))
