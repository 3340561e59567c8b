"""How much does Gymnos add to a plain Keras script doing the same work?

Runs the seed's Boston Housing example (its trackers included) through ``manage.py train``
and through bench/plain_keras_boston.py, which does the same steps and keeps the same records
(Keras' TensorBoard callback, MLflow's fluent API), alternated, each as a fresh process (so
each pays the TensorFlow import), and prints median wall times and the ratios.

Two baselines: the plain script as anyone would write it, and the same script with Gymnos'
start-up tuning (the garbage collector paused while the frameworks import, then frozen;
experiments/pipeline/preload.py). The first is what a user saves by switching; the second
isolates what Gymnos' own work (Django, validation, logs, metrics.json, indexing) costs.

    python -m bench.overhead                 # 5 repetitions of each
    python -m bench.overhead --reps 9 --no-trackers

Goal (issue 2): total ratio <= 1.10, fit-step ratio <= 1.05.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_gymnos(config_file, workdir):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{workdir / 'index.sqlite3'}"}
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "train",
            str(config_file),
            "--no-progress",
            "--trainings-root",
            str(workdir / "trainings"),
            "--cache-dir",
            str(workdir / "cache"),
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    total = time.perf_counter() - start
    folder = Path(done.stdout.strip().splitlines()[-1])
    document = json.loads((folder / "metrics.json").read_text())
    return {"total": total, "fit": document["elapsed"]["fit_model"], "epochs": len(document["metrics"]["loss"])}


def run_plain(config_file, workdir, tuned_gc=False):
    out = Path(tempfile.mkdtemp(dir=workdir / "plain"))
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.plain_keras_boston",
            str(config_file),
            str(out),
            *(["--tuned-gc"] if tuned_gc else []),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["total"] = time.perf_counter() - start
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument(
        "--no-trackers",
        action="store_true",
        help="drop the example's tensorboard and mlflow trackers (from both sides)",
    )
    args = parser.parse_args()

    config = json.loads((ROOT / "examples" / "boston_housing.json").read_text())
    if args.no_trackers:
        config["tracking"]["trackers"] = []
    contenders = {
        "gymnos": run_gymnos,
        "keras": run_plain,
        "keras+gc": lambda config_file, workdir: run_plain(config_file, workdir, tuned_gc=True),
    }
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "plain").mkdir()
        config_file = workdir / "config.json"
        config_file.write_text(json.dumps(config))
        # Warm-up: fills the dataset caches and creates both MLflow stores.
        run_gymnos(config_file, workdir)
        run_plain(config_file, workdir)
        runs = {name: [] for name in contenders}
        for rep in range(args.reps):
            for name, run in contenders.items():
                runs[name].append(run(config_file, workdir))
            print(
                f"rep {rep + 1}/{args.reps}: "
                + " | ".join(
                    f"{name} {runs[name][-1]['total']:.2f}s "
                    f"(fit {runs[name][-1]['fit']:.2f}s, {runs[name][-1]['epochs']} epochs)"
                    for name in contenders
                ),
                flush=True,
            )

    def median(name, key):
        return statistics.median(run[key] for run in runs[name])

    trackers = (
        "without trackers" if args.no_trackers else "with the example's tensorboard + mlflow trackers (on both sides)"
    )
    print(f"\nBoston Housing example, {args.reps} alternated repetitions, {trackers}")
    print(f"{'':12}{'gymnos':>9}{'keras':>9}{'keras+gc':>10}{'ratio':>8}{'ratio+gc':>10}")
    for key, label in (("total", "total wall"), ("fit", "fit step")):
        g, k, t = median("gymnos", key), median("keras", key), median("keras+gc", key)
        print(f"{label:12}{g:>8.2f}s{k:>8.2f}s{t:>9.2f}s{g / k:>8.3f}{g / t:>10.3f}")
    print("ratio: gymnos / the plain script; ratio+gc: gymnos / the plain script with Gymnos' start-up tuning")


if __name__ == "__main__":
    main()
