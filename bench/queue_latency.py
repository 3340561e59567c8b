"""Per-job overhead of the queue: how long a small run waits around its training.

Starts an embedded Redis and one warm worker (TensorFlow already imported), then sends
N small jobs through the real queue one at a time (the worker idle before each), and
reads each run's timeline:

    queued (Execution.created_at) -> fit starts ("Fitting model with" in execution.log)
    fit ends ("Fitting model took")  -> status succeeded (Execution.finished_at)

    python -m bench.queue_latency            # 20 jobs
    python -m bench.queue_latency --jobs 5

Goal (issue 5): median overhead under 0.3 s per job; queue-to-start under 0.5 s on an idle worker.
"""

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.stack import fresh

ROOT = Path(__file__).resolve().parent.parent


def log_time(line):
    return dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").astimezone(dt.UTC)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    tmp, env = fresh("queue")
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gymnos_web.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from experiments.jobs.launching import launch
    from experiments.jobs.queues import EmbeddedRedis
    from experiments.models import Execution

    call_command("migrate", verbosity=0)
    redis_server = EmbeddedRedis().start()
    worker = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "rqworker", "default", "--name", "bench"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    config = json.loads((ROOT / "examples" / "boston_housing.json").read_text())
    config["training"]["epochs"] = args.epochs
    config["training"]["callbacks"] = []
    config["tracking"]["trackers"] = []
    try:
        import django_rq
        from rq import Worker

        deadline = time.monotonic() + 120
        while not any(w.name == "bench" for w in Worker.all(connection=django_rq.get_connection())):
            if time.monotonic() > deadline:
                raise SystemExit("the worker did not start")
            time.sleep(0.2)
        rows = []
        for index in range(args.jobs + 1):  # the first job warms the dataset cache; not counted
            execution = launch(config)
            while Execution.objects.filter(pk=execution.pk, status__in=["queued", "running"]).exists():
                time.sleep(0.02)
            execution.refresh_from_db()
            if execution.status != "succeeded":
                raise SystemExit(f"job {index} ended {execution.status}: {execution.error}")
            lines = (Path(execution.folder_path) / "execution.log").read_text().splitlines()
            fit_start = log_time(next(line for line in lines if "Fitting model with" in line))
            fit_end = log_time(next(line for line in lines if "Fitting model took" in line))
            if index:
                rows.append(
                    {
                        "to_start": (fit_start - execution.created_at).total_seconds(),
                        "after_fit": (execution.finished_at - fit_end).total_seconds(),
                        "fit": execution.elapsed["fit_model"],
                    }
                )
            time.sleep(0.3)  # the worker is idle again before the next job
    finally:
        worker.terminate()
        worker.wait()
        redis_server.stop()

    median = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
    overhead = statistics.median(row["to_start"] + row["after_fit"] for row in rows)
    print(f"{args.jobs} jobs of {args.epochs} epochs through the embedded Redis and one warm worker (medians):")
    print(f"  queued -> fit starts     {median['to_start']:.3f} s")
    print(f"  fit ends -> succeeded    {median['after_fit']:.3f} s")
    print(f"  overhead per job         {overhead:.3f} s")
    print(f"  fit itself               {median['fit']:.3f} s   (overhead / fit = {overhead / median['fit']:.2f})")


if __name__ == "__main__":
    main()
