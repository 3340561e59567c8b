"""PostgreSQL kills every connection (``pg_terminate_backend``: what a failover or a restart does): requests go on
answering, every long-lived loop goes on on a new connection, and Ctrl-C still cancels what ran.

On PostgreSQL only (the PostgreSQL pass of scripts/test runs them); ``up`` on the test database, its own Redis.
"""

import datetime as dt
import json
import signal
import subprocess
import sys
import urllib.request

import pytest
from django.contrib.auth.models import User
from django.db import InterfaceError, OperationalError, connection, connections
from django.utils import timezone

from experiments.jobs import database
from experiments.models import Execution, Experiment
from experiments.models.lifecycle import WORKER_LOST
from tests.helpers import ROOT, stack_env, tiny, token_for
from tests.test_up import free_port
from tests.workers import database_url, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.training, pytest.mark.postgres]


@pytest.fixture(autouse=True)
def postgres():
    if connection.vendor != "postgresql":
        pytest.skip("kills PostgreSQL's connections (the PostgreSQL pass runs it)")


def kill_connections(but=None):
    """Terminate every connection to the test database except ``but``'s (default: this thread's), as a failover
    would; returns how many."""
    keep = but or connection
    with keep.cursor() as cursor:
        cursor.execute(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity "
            "where datname = current_database() and pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_a_loop_step_whose_connection_was_killed_runs_again_on_a_new_one():
    Experiment.objects.create(name="boston_housing")
    assert Execution.objects.count() == 0  # the connection is open
    other = connections.create_connection("default")
    try:
        assert kill_connections(but=other) >= 1
    finally:
        other.close()
    with pytest.raises((InterfaceError, OperationalError)):
        Execution.objects.count()  # what a loop without the rule met every 5 s, forever
    assert database.step("count the runs", Execution.objects.count) == 0
    assert Experiment.objects.count() == 1


@pytest.fixture
def up(tmp_path):
    """``manage.py up`` on the test database (its own embedded Redis); returns (process, base URL)."""
    started = []

    def start(*arguments, **extra_env):
        env = stack_env(tmp_path, DATABASE_URL=database_url(), **extra_env)
        port = free_port()
        log = open(tmp_path / "up.log", "wb")  # the process keeps it open: not a with block
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "up", "--bind", f"127.0.0.1:{port}", *arguments],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        wait_for(
            lambda: b"Gymnos is up" in (tmp_path / "up.log").read_bytes() or process.poll() is not None,
            timeout=360,
            message="up started",
        )
        assert process.poll() is None, (tmp_path / "up.log").read_text()[-3000:]
        return process, f"http://127.0.0.1:{port}"

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


def get(url, token):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_requests_after_the_connections_were_killed_answer_and_the_supervisor_reaps_again(up, capsys):
    token = token_for(User.objects.create_user("ada", password="pw-ada-123"), capsys)
    process, base = up("--workers", "0")
    assert [get(f"{base}/api/executions", token) for _ in range(8)] == [200] * 8
    # The supervisor's kept connection at least (under ASGI the web processes close theirs as each request ends:
    # gymnos_web.streaming.per_request_connections; a request's may still be open as it is killed).
    assert kill_connections() >= 1
    assert [get(f"{base}/api/executions", token) for _ in range(40)] == [200] * 40  # 8 of 40 were 500s
    # The supervisor's loop, on a new connection: it fails a run whose worker went silent (its only reaper here).
    stale = Execution.objects.create(
        experiment=Experiment.objects.create(name="x"),
        status="running",
        job_id="execution-9",
        heartbeat_at=timezone.now() - dt.timedelta(seconds=40),
    )
    wait_for(lambda: Execution.objects.status_of(stale.pk) == "failed", timeout=60, message="the stale run failed")
    assert Execution.objects.get(pk=stale.pk).error == WORKER_LOST


def test_ctrl_c_after_the_connections_were_killed_leaves_the_run_that_trained_cancelled(up, tmp_path):
    config = tmp_path / "slow.json"
    config.write_text(
        json.dumps(tiny(epochs=60, callbacks=[{"type": "lambda_callback", "on_epoch_end": "tests.hooks.pause"}]))
    )
    process, _ = up("--enqueue", str(config), GYMNOS_TEST_EPOCH_PAUSE="0.5")
    execution = wait_for(
        lambda: Execution.objects.filter(status="running", epochs__gte=1).first(), timeout=180, message="training"
    )
    killed_at = Execution.objects.get(pk=execution.pk).epochs
    assert kill_connections() >= 2
    # The work horse's progress and heartbeat go on, on new connections (the training is not failed by them).
    wait_for(lambda: Execution.objects.get(pk=execution.pk).epochs >= killed_at + 3, timeout=60, message="epochs")
    kill_connections()  # once more, right before Ctrl-C: the supervisor's connection is dead as it stops
    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 0
    execution.refresh_from_db()
    assert execution.status == "cancelled", execution.error  # why it ended otherwise
    assert execution.error.startswith("cancelled: `manage.py up` was stopped while this ran")
