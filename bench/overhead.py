"""How much does Gymnos add to a plain Keras script doing the same work?

Runs the seed's Boston Housing example through ``manage.py train`` and through
bench/plain_keras_boston.py, alternated, each as a fresh process (so both pay the
TensorFlow import), and prints median wall times and the ratios.

    python bench/overhead.py                 # 5 repetitions of each
    python bench/overhead.py --reps 9 --no-trackers

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
        [sys.executable, str(ROOT / "manage.py"), "train", str(config_file), "--no-progress",
         "--trainings-root", str(workdir / "trainings"), "--cache-dir", str(workdir / "cache")],
        cwd=workdir, env=env, capture_output=True, text=True, check=True,
    )
    total = time.perf_counter() - start
    folder = Path(done.stdout.strip().splitlines()[-1])
    document = json.loads((folder / "metrics.json").read_text())
    return {"total": total, "fit": document["elapsed"]["fit_model"], "epochs": len(document["metrics"]["loss"])}


def run_plain(config_file, workdir):
    out = Path(tempfile.mkdtemp(dir=workdir))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bench.plain_keras_boston", str(config_file), str(out)],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["total"] = time.perf_counter() - start
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-trackers", action="store_true", help="drop the example's tensorboard and mlflow trackers")
    args = parser.parse_args()

    config = json.loads((ROOT / "examples" / "boston_housing.json").read_text())
    if args.no_trackers:
        config["tracking"]["trackers"] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        config_file = workdir / "config.json"
        config_file.write_text(json.dumps(config))
        run_gymnos(config_file, workdir)  # warm-up: fills the dataset cache and creates the MLflow store
        runs = {"gymnos": [], "keras": []}
        for rep in range(args.reps):
            runs["gymnos"].append(run_gymnos(config_file, workdir))
            runs["keras"].append(run_plain(config_file, workdir))
            print(f"rep {rep + 1}/{args.reps}: gymnos {runs['gymnos'][-1]['total']:.2f}s (fit {runs['gymnos'][-1]['fit']:.2f}s, "
                  f"{runs['gymnos'][-1]['epochs']} epochs) | keras {runs['keras'][-1]['total']:.2f}s "
                  f"(fit {runs['keras'][-1]['fit']:.2f}s, {runs['keras'][-1]['epochs']} epochs)", flush=True)

    def median(name, key):
        return statistics.median(run[key] for run in runs[name])

    trackers = "without trackers" if args.no_trackers else "with the example's tensorboard + mlflow trackers"
    print(f"\nBoston Housing example, {args.reps} alternated repetitions, {trackers}")
    print(f"{'':14}{'gymnos':>10}{'keras':>10}{'ratio':>8}")
    for key, label in (("total", "total wall"), ("fit", "fit step")):
        g, k = median("gymnos", key), median("keras", key)
        print(f"{label:14}{g:>9.2f}s{k:>9.2f}s{g / k:>8.3f}")


if __name__ == "__main__":
    main()
