"""How fast is the dashboard on a big experiment, next to MLflow on the same data?

Fills a fresh SQLite database with N executions (4 metrics x 100 epochs each) and an MLflow
SQLite store with the same runs, then measures, alternating the two in one process:

* the experiment page sorted by val_loss, 100 rows (Django's test client), against MLflow's
  ``search_runs`` top 100 ordered by ``metrics.val_loss``;
* the compare data of 20 runs (``/compare/data.json``), against the 80 ``get_metric_history``
  calls MLflow needs for the same 20 runs x 4 metrics.

Prints each side's median and the ratio (MLflow / Gymnos: how many times faster Gymnos is).

    python bench/dashboard.py                      # 10,000 executions, 15 rounds
    python bench/dashboard.py --executions 2000 --rounds 21

Goal (issue 6): median under 50 ms for both, and at least 10x faster than MLflow.
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
METRICS = ("loss", "val_loss", "mean_absolute_error", "val_mean_absolute_error")


def curves(rng, epochs):
    """Four plausible, decreasing training curves for one run."""
    scale, speed = rng.uniform(50, 600), rng.uniform(0.05, 0.4)
    floor = rng.uniform(5, 30)
    loss = [floor + scale * (1 - speed) ** epoch * rng.uniform(0.95, 1.05) for epoch in range(epochs)]
    val = [value * rng.uniform(1.05, 1.3) for value in loss]
    return {
        "loss": loss,
        "val_loss": val,
        "mean_absolute_error": [v**0.5 for v in loss],
        "val_mean_absolute_error": [v**0.5 for v in val],
    }


def setup_django(workdir):
    os.environ.update(
        DJANGO_SETTINGS_MODULE="gymnos_web.settings",
        DATABASE_URL=f"sqlite:///{workdir / 'gymnos.sqlite3'}",
        GYMNOS_VAR_DIR=str(workdir / "var"),
        GYMNOS_TRAININGS_ROOT=str(workdir / "trainings"),
        ALLOWED_HOSTS="testserver",  # the test client's host
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def fill_gymnos(runs, epochs):
    import datetime as dt

    from django.contrib.auth.models import User
    from django.db import transaction
    from django.utils import timezone

    from experiments.models import Execution, Experiment, MetricHistory

    experiment = Experiment.objects.create(name="boston_housing")
    start = timezone.now() - dt.timedelta(days=365)
    ids = []
    for offset in range(0, len(runs), 1000):
        batch = runs[offset : offset + 1000]
        with transaction.atomic():
            executions = []
            for index, (name, history) in enumerate(batch, start=offset):
                execution = Execution(
                    experiment=experiment,
                    folder_name=name,
                    folder_path=f"/bench/{name}",
                    status=Execution.Status.SUCCEEDED,
                    title="Boston Housing",
                    tags=["bench"],
                    config={"training": {"epochs": epochs, "batch_size": 32 * (1 + index % 4)}},
                    elapsed={"load_data": 0.7, "fit_model": 2.3, "evaluate_model": 0.01},
                    hardware={"cpu": {"model": "Bench CPU", "logical_cores": 2}, "gpus": []},
                    started_at=start + dt.timedelta(minutes=index),
                    finished_at=start + dt.timedelta(minutes=index, seconds=30),
                    epochs_total=epochs,
                )
                execution.set_metrics({**history, "test_loss": [history["val_loss"][-1] * 1.1]})
                executions.append(execution)
            Execution.objects.bulk_create(executions)
            saved = dict(
                Execution.objects.filter(folder_name__in=[name for name, _ in batch]).values_list("folder_name", "pk")
            )
            MetricHistory.objects.bulk_create(
                [
                    MetricHistory(execution_id=saved[name], name=metric, values=history[metric])
                    for name, history in batch
                    for metric in METRICS
                ]
            )
            ids += [saved[name] for name, _ in batch]
    user = User.objects.create_user("bench")
    return ids, user


def fill_mlflow(runs, tracking_uri):
    import mlflow
    from mlflow.entities import Metric, Param

    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri)
    experiment_id = client.create_experiment("boston_housing")
    run_ids = {}
    now = int(time.time() * 1000)
    for name, history in runs:
        run = client.create_run(experiment_id, run_name=name)
        metrics = [
            Metric(metric, value, now + step, step) for metric in METRICS for step, value in enumerate(history[metric])
        ]
        for offset in range(0, len(metrics), 1000):  # MLflow takes at most 1,000 metrics per batch
            client.log_batch(
                run.info.run_id,
                metrics=metrics[offset : offset + 1000],
                params=[Param("batch_size", "32")] if offset == 0 else [],
            )
        client.set_terminated(run.info.run_id)
        run_ids[name] = run.info.run_id
    return client, experiment_id, run_ids


def timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--executions", type=int, default=10_000, help="how many runs to fill each store with (default 10,000)"
    )
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=15, help="measurements of each kind, alternated (default 15)")
    parser.add_argument("--compare", type=int, default=20, help="runs in the comparison (default 20)")
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    runs = [(f"run-{index:06d}", curves(rng, args.epochs)) for index in range(args.executions)]
    with tempfile.TemporaryDirectory(prefix="gymnos-bench-") as tmp:
        workdir = Path(tmp)
        setup_django(workdir)
        started = time.perf_counter()
        ids, user = fill_gymnos(runs, args.epochs)
        print(
            f"filled Gymnos with {len(ids):,} executions x {len(METRICS)} metrics x {args.epochs} epochs "
            f"in {time.perf_counter() - started:.1f}s",
            flush=True,
        )
        started = time.perf_counter()
        mlflow_client, experiment_id, run_ids = fill_mlflow(runs, f"sqlite:///{workdir / 'mlflow.db'}")
        print(
            f"filled MLflow ({__import__('mlflow').__version__}, SQLite store) with the same runs "
            f"in {time.perf_counter() - started:.1f}s",
            flush=True,
        )

        from django.test import Client

        client = Client()
        client.force_login(user)
        by_name = dict(zip([name for name, _ in runs], ids, strict=False))
        page_url = "/experiments/boston_housing/?sort=val_loss&per_page=100"
        first = client.get(page_url)
        assert first.status_code == 200 and b"run-" in first.content, first.status_code

        def gymnos_page():
            response = client.get(page_url)
            assert response.status_code == 200

        def mlflow_page():
            found = mlflow_client.search_runs([experiment_id], order_by=["metrics.val_loss ASC"], max_results=100)
            assert len(found) == min(100, len(runs))

        results = {"gymnos page": [], "mlflow page": [], "gymnos compare": [], "mlflow compare": []}
        for _ in range(args.rounds):
            chosen = rng.sample([name for name, _ in runs], args.compare)
            compare_url = "/compare/data.json?runs=" + ",".join(str(by_name[name]) for name in chosen)

            def gymnos_compare(compare_url=compare_url):
                data = client.get(compare_url).json()
                assert len(data["metrics"]["val_loss"]) == args.compare

            def mlflow_compare(chosen=chosen):
                for name in chosen:
                    for metric in METRICS:
                        assert len(mlflow_client.get_metric_history(run_ids[name], metric)) == args.epochs

            results["gymnos page"].append(timed(gymnos_page))
            results["mlflow page"].append(timed(mlflow_page))
            results["gymnos compare"].append(timed(gymnos_compare))
            results["mlflow compare"].append(timed(mlflow_compare))

    medians = {key: statistics.median(values) for key, values in results.items()}
    print(f"\n{args.executions:,} executions, {args.rounds} rounds each, alternated; medians:")
    print(
        f"  experiment page sorted by val_loss (100 rows): Gymnos {medians['gymnos page'] * 1000:7.1f} ms   "
        f"MLflow search_runs top 100: {medians['mlflow page'] * 1000:8.1f} ms   "
        f"ratio {medians['mlflow page'] / medians['gymnos page']:.1f}x"
    )
    print(
        f"  compare data, {args.compare} runs x {len(METRICS)} metrics:     "
        f"Gymnos {medians['gymnos compare'] * 1000:7.1f} ms   "
        f"MLflow {args.compare * len(METRICS)} get_metric_history: {medians['mlflow compare'] * 1000:8.1f} ms   "
        f"ratio {medians['mlflow compare'] / medians['gymnos compare']:.1f}x"
    )
    ok = all(
        medians[f"gymnos {kind}"] < 0.050 and medians[f"mlflow {kind}"] / medians[f"gymnos {kind}"] >= 10
        for kind in ("page", "compare")
    )
    print(f"goal (median < 50 ms and >= 10x MLflow, both): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
