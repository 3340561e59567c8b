"""How fast offline runs reach a server: gymnos_track's folders pushed, against MLflow's client logging the same.

Writes ``--runs`` offline runs of ``--epochs`` epochs x 4 metrics with gymnos_track, starts
``manage.py up --workers 0`` on a fresh var/ (SQLite, gunicorn), takes a push-only token, and pushes
them all (``manage.py push``'s function, 4 folders at a time; a run of small files goes in one
request, its files sent with their list): wall time and runs/s, each run stored and indexed on
arrival. Then pushes them again (nothing new may be made: the rows are counted). For the baseline,
in the same run: ``mlflow server`` (SQLite backend) on the same machine, and the same runs logged
through MLflow's client as a script would sync them (a run, its params, its metrics with
``log_batch``, its end), one client thread per pushing thread.

    python -m bench.push [--runs 1000] [--epochs 100] [--no-mlflow]

Then the same runs pushed to a fresh ``up`` whose web server (gunicorn) is killed with SIGKILL once half
of them are there, ``up`` started again and the push run again: the executions counted (one per folder)
and every stored folder compared with the client's.

Goal (issue 28): at least 10x MLflow's time (the ratio printed is MLflow's time / the push's); an
interrupted push resumed loses nothing and duplicates nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

import gymnos_track
from bench.stack import free_port, fresh, wait_for
from gymnos_track.push import find_runs, push

ROOT = Path(__file__).resolve().parent.parent
NAMES = ("loss", "val_loss", "accuracy", "val_accuracy")


def _histories(index, epochs):
    return {name: [1.0 / (epoch + index + offset + 1) for epoch in range(epochs)] for offset, name in enumerate(NAMES)}


def _write_runs(root, runs, epochs):
    for index in range(runs):
        run = gymnos_track.start(experiment="bench", config={"index": index, "lr": 0.01}, root=root, flush_seconds=1e9)
        histories = _histories(index, epochs)
        for epoch in range(epochs):
            run.log({name: values[epoch] for name, values in histories.items()}, epoch=epoch)
        run.finish()


def _up(work, env):
    """``manage.py up --workers 0`` on ``work``'s var/; returns (the process, the server's URL, a push-only token)."""
    port = free_port()
    log = open(work / "up.log", "ab")
    start = log.tell()
    up = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "up", "--workers", "0", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    try:
        wait_for(lambda: b"Log in " in (work / "up.log").read_bytes()[start:] or up.poll() is not None, "up")
    except BaseException:  # Ctrl-C while it starts: no stack left behind
        _stop(up)
        raise
    if up.poll() is not None:
        raise SystemExit("up did not start:\n" + (work / "up.log").read_text()[-3000:])
    token = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "api_token", "admin", "--rotate", "--push-only"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    return up, f"http://127.0.0.1:{port}", token


def _stop(up):
    up.send_signal(signal.SIGINT)
    up.wait(60)


def _rows(work):
    database = sqlite3.connect(work / "var" / "gymnos.sqlite3")
    return database.execute(
        "select count(*), count(distinct folder_name), sum(status = 'succeeded') from experiments_execution"
    ).fetchone()


def _gymnos(local, runs):
    work, env = fresh("push")
    env.update(PYTHONUNBUFFERED="1")
    up, server, token = _up(work, env)
    try:
        started = time.perf_counter()
        first = push(local, server, token, progress=None)
        pushed = time.perf_counter() - started
        started = time.perf_counter()
        again = push(local, server, token, progress=None)
        repeated = time.perf_counter() - started
    finally:
        _stop(up)
    rows, _, succeeded = _rows(work)
    assert len(first.pushed) == runs, (first.line(), list(first.refused.values())[:3])
    assert len(again.existed) == runs, again.line()
    assert not again.pushed, again.line()
    return pushed, repeated, (rows, succeeded)


def _stored(executions):
    """The run folders in place under ``executions`` (staging not counted)."""
    return sum(1 for name in os.listdir(executions) if not name.startswith(".")) if executions.is_dir() else 0


def _files(folder):
    return {path.relative_to(folder): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def _interrupted(local, runs):
    """Push to ``up``, kill its web server (gunicorn, master and workers: SIGKILL) once half the runs are there,
    start ``up`` again and push again: (runs there at the kill, the second push's report, rows, folders equal)."""
    work, env = fresh("push-killed")
    env.update(PYTHONUNBUFFERED="1")
    up, server, token = _up(work, env)
    stored = work / "trainings" / "bench" / "executions"
    outcome: dict[str, object] = {}

    def pushing():
        try:
            outcome["report"] = push(local, server, token, progress=None)
        except OSError as exc:  # the server gone mid-request
            outcome["error"] = exc

    thread = threading.Thread(target=pushing)
    try:
        thread.start()
        there = functools.partial(_stored, stored)
        wait_for(lambda: there() >= runs // 2 or not thread.is_alive(), "half the runs pushed")
        web = next(child for child in psutil.Process(up.pid).children() if "gunicorn" in " ".join(child.cmdline()))
        os.killpg(web.pid, signal.SIGKILL)
        at_kill = there()
        thread.join(120)
        up.wait(60)  # up stops when its web server is gone
        up, server, token = _up(work, env)
        second = push(local, server, token, progress=None)
    finally:
        _stop(up)
    same = all(_files(folder) == _files(stored / folder.name) for folder in find_runs(local))
    return at_kill, "error" in outcome, second, _rows(work), same


def _mlflow(runs, epochs, workers=4):
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    work = Path(tempfile.mkdtemp(prefix="gymnos-bench-push-mlflow-"))
    port = free_port()
    log = open(work / "mlflow.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}", "--default-artifact-root", str(work / "artifacts"),
         "--workers", "2"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        client = MlflowClient(f"http://127.0.0.1:{port}")

        def up():
            try:
                client.search_experiments()
                return True
            except Exception:  # noqa: BLE001 - not answering yet
                return server.poll() is not None

        wait_for(up, "mlflow server")
        experiment = client.create_experiment("bench")
        now = int(time.time() * 1000)

        def one(index):
            run = client.create_run(experiment)
            histories = _histories(index, epochs)
            metrics = [
                Metric(name, value, now, epoch)
                for name, values in histories.items()
                for epoch, value in enumerate(values)
            ]
            params = [Param("index", str(index)), Param("lr", "0.01")]
            for start in range(0, len(metrics), 1000):  # log_batch takes at most 1,000 metrics
                client.log_batch(
                    run.info.run_id, metrics=metrics[start : start + 1000], params=params if not start else []
                )
            client.set_terminated(run.info.run_id)

        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), ThreadPoolExecutor(workers) as pool:  # its "View run" lines
            list(pool.map(one, range(runs)))
        return time.perf_counter() - started
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(60)
        log.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--no-mlflow", action="store_true")
    args = parser.parse_args()

    local = Path(tempfile.mkdtemp(prefix="gymnos-bench-push-local-"))
    started = time.perf_counter()
    _write_runs(local, args.runs, args.epochs)
    written = time.perf_counter() - started
    size = sum(path.stat().st_size for path in local.rglob("*") if path.is_file())
    print(f"{args.runs:,} runs of {args.epochs} epochs x 4 metrics written offline by gymnos_track in {written:.2f} s "
          f"({size / 1e6:.1f} MB)")  # fmt: skip
    pushed, repeated, (rows, succeeded) = _gymnos(local, args.runs)
    print(f"push to manage.py up:        {pushed:7.2f} s  {args.runs / pushed:7.1f} runs/s  "
          f"({rows:,} executions indexed, {succeeded:,} succeeded)")  # fmt: skip
    print(f"push again (nothing new):    {repeated:7.2f} s  {rows:,} executions still")
    at_kill, cut, second, (killed_rows, folders, killed_ok), same = _interrupted(local, args.runs)
    ended = "failed" if cut else "had ended"
    print(
        f"push cut off by the server's SIGKILL at {at_kill:,} of {args.runs:,} runs (the push {ended}), "
        f"up started again, pushed again: {second.line()}; {killed_rows:,} executions for {folders:,} folders, "
        f"{killed_ok:,} succeeded; every folder byte-equal to the client's: {'yes' if same else 'NO'}"
    )
    if args.no_mlflow:
        return
    mlflow_seconds = _mlflow(args.runs, args.epochs)
    print(f"MLflow client -> mlflow server: {mlflow_seconds:7.2f} s  {args.runs / mlflow_seconds:7.1f} runs/s")
    ratio = mlflow_seconds / pushed
    print(f"ratio (MLflow's time / the push's): {ratio:.1f}x  goal >= 10x: {'met' if ratio >= 10 else 'NOT met'}")
    print(json.dumps({"runs": args.runs, "push_s": pushed, "again_s": repeated, "mlflow_s": mlflow_seconds}))


if __name__ == "__main__":
    main()
