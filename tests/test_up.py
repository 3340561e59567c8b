"""``manage.py up``: the embedded stack starts, trains a queued run, and stops with no leftovers."""

import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.helpers import ROOT, stack_env, tiny
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

    def start(*configs, extra_env=None, args=()):
        files = []
        for index, config in enumerate(configs):
            path = tmp_path / f"config-{index}.json"
            path.write_text(json.dumps(config))
            files += ["--enqueue", str(path)]
        env = stack_env(tmp_path, **(extra_env or {}))
        port = free_port()
        log = open(tmp_path / "up.log", "wb")
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "up", "--bind", f"127.0.0.1:{port}", *files, *args],
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
        return process, port

    yield start
    for process in started:  # a test that failed midway leaves no stack behind: up's children go with it
        if process.poll() is not None:
            continue
        children = psutil.Process(process.pid).children(recursive=True)
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


def statuses(tmp_path):
    with sqlite3.connect(tmp_path / "var" / "gymnos.sqlite3") as db:
        return dict(db.execute("select id, status from experiments_execution"))


def descendants(pid):
    return [child.pid for child in psutil.Process(pid).children(recursive=True)]


def scheduling(pid):
    """A process's nice, and its session's scheduling group's where Linux has autogroups (None where it has not)."""
    try:
        group = Path(f"/proc/{pid}/autogroup").read_text()  # "/autogroup-123 nice 5"
    except OSError:
        group = None
    return psutil.Process(pid).nice(), None if group is None else int(group.split("nice")[1])


def test_up_trains_a_queued_run_and_ctrl_c_stops_every_child(up, tmp_path):
    process, port = up(tiny(epochs=2), extra_env={"GYMNOS_WORKER_NICE": "5"})
    children = descendants(process.pid)
    assert len(children) >= 3  # redis-server, a worker, the web server
    # The workers yield the CPU to the web server: niced, and so is their session's group where the kernel schedules
    # by session (autogroup), or their nice would rank them only against each other.
    commands = {pid: " ".join(psutil.Process(pid).cmdline()) for pid in children}
    workers = [pid for pid, command in commands.items() if "rqworker" in command]
    web = [pid for pid, command in commands.items() if "gunicorn" in command]
    assert workers
    assert web
    for pid in workers:
        assert scheduling(pid)[0] == 5
        assert scheduling(pid)[1] in (None, 5)  # None: a kernel without autogroups
    for pid in web:
        assert scheduling(pid) in ((0, None), (0, 0))
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    wait_for(lambda: statuses(tmp_path).get(1) == "succeeded", timeout=300, message="queued example trained")

    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 0
    time.sleep(0.5)
    left = [pid for pid in children if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert [" ".join(psutil.Process(pid).cmdline()) for pid in left] == []
    assert "Stopped." in (tmp_path / "up.log").read_text()


def test_stopping_up_mid_run_leaves_no_execution_running(up, tmp_path):
    slow = tiny(epochs=60, callbacks=[{"type": "lambda_callback", "on_epoch_end": "tests.hooks.pause"}])
    process, _ = up(slow, extra_env={"GYMNOS_TEST_EPOCH_PAUSE": "0.5"})
    wait_for(lambda: statuses(tmp_path).get(1) == "running", timeout=300, message="run started")
    time.sleep(2)
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0
    assert statuses(tmp_path)[1] == "cancelled"
    with sqlite3.connect(tmp_path / "var" / "gymnos.sqlite3") as db:
        error, folder = db.execute("select error, folder_path from experiments_execution where id = 1").fetchone()
    assert "manage.py up" in error
    assert os.path.isfile(os.path.join(folder, "execution.log"))


def up_log(tmp_path):
    return (tmp_path / "up.log").read_text(errors="replace")


def get(port, path, headers=b""):
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        connection.sendall(b"GET " + path.encode() + b" HTTP/1.0\r\nHost: 127.0.0.1\r\n" + headers + b"\r\n")
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
        return answer


def after_login_line(tmp_path):
    console = up_log(tmp_path).splitlines()
    return console[[i for i, line in enumerate(console) if "Log in as: admin / " in line][-1] + 1 :]


def test_up_serves_with_gunicorn_and_the_login_line_stays_last_and_requests_are_not_shown(up, tmp_path):
    process, port = up()
    commands = [" ".join(psutil.Process(pid).cmdline()) for pid in descendants(process.pid)]
    assert any("gunicorn" in command and "gymnos_web.asgi:application" in command for command in commands)
    assert not any("runserver" in command for command in commands)
    wait_for(lambda: "Log in as: admin / " in up_log(tmp_path), timeout=60, message="login line")
    page = get(port, "/accounts/login/")
    assert page.startswith(b"HTTP/1")
    assert b"Log in to Gymnos" in page
    css = re.search(rb'href="(/static/css/gymnos\.[0-9a-f]{12}\.css)"', page)
    assert css is not None  # the static files were collected: hashed names, served gzipped
    assert b"Content-Encoding: gzip" in get(port, css.group(1).decode(), b"Accept-Encoding: gzip\r\n")
    time.sleep(2)  # what the console would print about those requests, it has printed by now
    assert after_login_line(tmp_path) == []  # no request lines: the password stays in sight
    assert not any(word in up_log(tmp_path) for word in ("oneDNN", "cuda", "absl::InitializeLog"))

    # The first log-in: the way back in is said again, without the password.
    said = re.search(r"Log in as: admin / (\S+)", up_log(tmp_path))
    assert said is not None
    password = said.group(1)
    login_page = get(port, "/accounts/login/")
    field = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', login_page)
    assert field is not None
    token = field.group(1).decode()
    set_cookie = re.search(rb"csrftoken=([^;]+);", login_page)
    assert set_cookie is not None
    cookie = set_cookie.group(1).decode()
    body = f"csrfmiddlewaretoken={token}&username=admin&password={password}".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        connection.sendall(
            b"POST /accounts/login/ HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            + f"Cookie: csrftoken={cookie}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        assert b" 302 " in connection.recv(100)
    wait_for(lambda: "admin logged in" in up_log(tmp_path), timeout=15, message="the first log-in said")
    line = [line for line in after_login_line(tmp_path) if "admin logged in" in line][0]
    assert "python manage.py changepassword admin" in line
    assert password not in line
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0


def test_with_access_log_up_shows_every_request(up, tmp_path):
    process, port = up(args=["--access-log"])
    wait_for(lambda: "Log in as: admin / " in up_log(tmp_path), timeout=60, message="login line")
    assert get(port, "/accounts/login/").startswith(b"HTTP/1")
    wait_for(lambda: "GET /accounts/login/" in up_log(tmp_path), timeout=10, message="the request logged")
    assert all("GET /" in line for line in after_login_line(tmp_path))
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0


def web_processes(up_pid):
    """The web server's processes under ``up``: the children of gunicorn's master."""
    (master,) = [child for child in psutil.Process(up_pid).children() if "gunicorn" in " ".join(child.cmdline())]
    return [child.pid for child in master.children()]


def get_status(port, path):
    """The status line of a GET on a new connection, within 5 s."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        return connection.recv(64).split(b"\r\n")[0]


def test_up_serves_from_two_web_processes_so_one_that_is_stuck_stalls_no_other_request(up, tmp_path):
    """A request that holds its process (as the quadratic JSON check did, for minutes) leaves the other serving."""
    process, port = up(args=["--workers", "0"])
    assert "(2 web processes (ASGI), 0 workers;" in up_log(tmp_path)
    stuck, serving = web_processes(process.pid)
    os.kill(stuck, signal.SIGSTOP)  # as frozen as a process whose GIL one request holds
    try:
        for _ in range(10):
            started = time.monotonic()
            assert get_status(port, "/accounts/login/").endswith(b" 200 OK")
            assert time.monotonic() - started < 5
    finally:
        os.kill(stuck, signal.SIGCONT)
    assert psutil.Process(serving).is_running()
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0


def test_ctrl_c_stops_a_training_run_within_ten_seconds_and_a_finished_run_stays_succeeded(up, tmp_path):
    ending = tiny(epochs=2, callbacks=[{"type": "lambda_callback", "on_train_end": "tests.hooks.linger"}])
    slow = tiny(epochs=60, callbacks=[{"type": "lambda_callback", "on_epoch_end": "tests.hooks.pause"}])
    mark = tmp_path / "lingering"
    pauses = {"GYMNOS_TEST_EPOCH_PAUSE": "0.5", "GYMNOS_TEST_END_PAUSE": "1.5", "GYMNOS_TEST_LINGER_MARK": f"{mark}"}
    process, _ = up(ending, slow, extra_env=pauses)

    def epochs(pk):
        with sqlite3.connect(tmp_path / "var" / "gymnos.sqlite3") as db:
            return db.execute("select epochs, status from experiments_execution where id = ?", (pk,)).fetchone()

    # The first run has trained its last epoch and is ending (its hook lingers): stop up right then.
    wait_for(mark.exists, timeout=300, interval=0.05, message="first run ending")
    assert epochs(1)[1] == "running"
    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    assert process.wait(30) == 0
    assert time.monotonic() - started < 10
    assert statuses(tmp_path) == {1: "succeeded", 2: "queued"}

    # Again, with the second run training: it is stopped and cancelled, within 10 s, with the reason.
    process, _ = up(extra_env={"GYMNOS_TEST_EPOCH_PAUSE": "0.5"})
    wait_for(lambda: epochs(2)[0] >= 2, timeout=300, message="second run training")
    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    assert process.wait(30) == 0
    assert time.monotonic() - started < 10
    with sqlite3.connect(tmp_path / "var" / "gymnos.sqlite3") as db:
        status, error = db.execute("select status, error from experiments_execution where id = 2").fetchone()
    assert status == "cancelled"
    assert error.startswith("cancelled: `manage.py up` was stopped while this ran")


def test_a_worker_killed_mid_run_fails_that_run_and_its_replacement_runs_the_next(up, tmp_path):
    slow = tiny(epochs=60, callbacks=[{"type": "lambda_callback", "on_epoch_end": "tests.hooks.pause"}])
    process, _ = up(slow, tiny(epochs=2), extra_env={"GYMNOS_TEST_EPOCH_PAUSE": "0.5"})
    wait_for(lambda: statuses(tmp_path).get(1) == "running", timeout=300, message="first run training")
    workers = [
        psutil.Process(pid) for pid in descendants(process.pid) if "rqworker" in " ".join(psutil.Process(pid).cmdline())
    ]
    worker = next(p for p in workers if p.ppid() == process.pid)
    worker.kill()  # SIGKILL: no goodbye to Redis, its work horse orphaned
    killed = time.monotonic()
    wait_for(lambda: statuses(tmp_path).get(1) == "failed", timeout=60, message="the run failed within 60 s")
    with sqlite3.connect(tmp_path / "var" / "gymnos.sqlite3") as db:
        (error,) = db.execute("select error from experiments_execution where id = 1").fetchone()
    assert error.startswith("worker lost")
    wait_for(lambda: statuses(tmp_path).get(2) == "succeeded", timeout=60 + 60 - (time.monotonic() - killed),
             message="the next run succeeded on the new worker")  # fmt: skip
    assert "exited (-9); starting a new one" in up_log(tmp_path)
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0


def test_the_supervisor_outlives_a_locked_database(up, tmp_path):
    process, _ = up(extra_env={"GYMNOS_SQLITE_TIMEOUT": "1"})
    # A run whose worker goes silent: its heartbeat turns stale (30 s) while the database is locked, so the
    # supervisor's next check writes to fail it, and finds the lock.
    stale = (
        "from django.utils import timezone; import datetime as dt; "
        "from experiments.models import Execution, Experiment; "
        "Execution.objects.create(experiment=Experiment.objects.create(name='x'), status='running', "
        "job_id='execution-9', heartbeat_at=timezone.now() - dt.timedelta(seconds=27))"
    )
    env = {**os.environ, "GYMNOS_VAR_DIR": str(tmp_path / "var")}
    env.pop("DATABASE_URL", None)
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "shell", "-c", stale], env=env, check=True, timeout=60)
    with sqlite3.connect(tmp_path / "var" / "gymnos.sqlite3", isolation_level=None) as db:
        db.execute("BEGIN EXCLUSIVE")
        time.sleep(12)  # past the heartbeat's 30 s and the supervisor's next checks, each failing on the lock
        assert process.poll() is None
        db.execute("ROLLBACK")
    assert "Could not check for lost workers" in (tmp_path / "var" / "log" / "gymnos.log").read_text()
    wait_for(lambda: statuses(tmp_path).get(1) == "failed", timeout=30, message="the stale run failed once unlocked")
    children = descendants(process.pid)
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0
    time.sleep(0.5)
    left = [pid for pid in children if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert left == []
