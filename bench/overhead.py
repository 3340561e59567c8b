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

    python -m bench.overhead --sampler [--reps 11] [--epochs 100]

The system-metrics sampler's cost (issue 14): in one process, the example's run (its trackers too,
unless --no-trackers; --epochs of them, without early stopping) alternately with the sampler on at
a 1 s interval and off, and the median fit step of each (also the median of each adjacent pair's
ratio, which a drifting machine load moves less). Then what the sampler costs directly: its CPU
time per sample, and the memory the process holds after 1,000 and after 10,000 samples.
Goal: fit step within 1% (ratio <= 1.01); the sampler's memory constant.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def train(config_file, workdir):
    """``manage.py train`` in a fresh process, on an index of its own; returns its folder and wall seconds."""
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
    return Path(done.stdout.strip().splitlines()[-1]), time.perf_counter() - start


def run_gymnos(config_file, workdir):
    folder, total = train(config_file, workdir)
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


def sampler_fit(config, workdir, interval):
    """One in-process run of ``config`` with the sampler at ``interval`` (0: off):
    (fit seconds, the process's CPU seconds during fit, samples)."""
    import keras

    from experiments.pipeline import load_config, run_experiment

    cpu: dict[str, float] = {}
    clock = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs=None: cpu.update(start=time.process_time()),
        on_train_end=lambda logs=None: cpu.update(end=time.process_time()),
    )
    os.environ["GYMNOS_SYSTEM_INTERVAL"] = str(interval)
    keras.backend.clear_session()
    result = run_experiment(load_config(config), workdir / "trainings", workdir / "cache", callbacks=[clock])
    assert result.succeeded, result.error
    assert result.path is not None
    path = result.path / "system_metrics.jsonl"
    samples = sum('"cpu_percent"' in line for line in path.read_text().splitlines()) if path.exists() else 0
    return result.metrics["elapsed"]["fit_model"], cpu["end"] - cpu["start"], samples


def sampler_cost(workdir, count, config):
    """The sampler's CPU seconds per sample in this process, without and with the config's trackers (which get
    every sample), 500 samples 20 ms apart (as fast as MLflow's store keeps up); then what it holds after 1,000
    and after ``count`` samples taken as fast as it can (traced by tracemalloc)."""
    import psutil

    from experiments.pipeline import load_config
    from experiments.pipeline.system_metrics import SystemSampler
    from experiments.pipeline.trackers import RunInfo, TrackerSet

    def run(folder, marks=None, on_sample=None, count=count, interval=0.0005):
        folder.mkdir(exist_ok=True)
        sampler = SystemSampler(folder, interval, on_sample=on_sample)
        sampler.start()
        while sampler.samples < count:
            if marks is not None and sampler.samples >= 1000 and not marks:
                marks.append((tracemalloc.get_traced_memory()[0], psutil.Process().memory_info().rss, sampler.samples))
            time.sleep(0.01)
        if marks is not None:
            marks.append((tracemalloc.get_traced_memory()[0], psutil.Process().memory_info().rss, sampler.samples))
        sampler.stop()
        return sampler.samples

    costs = {}
    cpu = time.process_time()
    taken = run(workdir / "cost", count=500, interval=0.02)
    costs["the sampler alone"] = (time.process_time() - cpu) / taken
    specs = list(load_config(config).tracking.trackers)
    if specs:
        trackers = TrackerSet.for_specs(specs)
        folder = workdir / "with-trackers"
        trackers.start(RunInfo(folder, "sampler cost", workdir, config, {}, []))
        cpu = time.process_time()
        taken = run(folder, on_sample=trackers.log_system, count=500, interval=0.02)
        names = " + ".join(tracker.name for tracker in trackers.active)
        costs[f"with the {names} trackers"] = (time.process_time() - cpu) / taken
        trackers.end("FINISHED")
    marks: list[Any] = []
    tracemalloc.start()
    run(workdir / "memory", marks)
    tracemalloc.stop()
    return costs, marks


def sampler_case(args):
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # Keras' note on retracing, as the same model is built run after run
    config = json.loads((ROOT / "examples" / "boston_housing.json").read_text())
    config["training"]["epochs"] = args.epochs
    config["training"]["callbacks"] = [c for c in config["training"]["callbacks"] if c["type"] != "early_stopping"]
    if args.no_trackers:
        config["tracking"]["trackers"] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        config["tracking"]["trackers"] = [
            {**t, "tracking_uri": f"sqlite:///{workdir / 'mlflow.db'}"} if t["type"] == "mlflow" else t
            for t in config["tracking"]["trackers"]
        ]
        sampler_fit(config, workdir, 0)  # warm-up: the dataset cache, the MLflow store, Keras' first trace
        runs: dict[int, list[tuple[float, float, int]]] = {
            1: [],
            0: [],
        }  # interval -> [(fit wall seconds, fit CPU seconds, samples)]
        for rep in range(args.reps):
            for interval in (1, 0) if rep % 2 else (0, 1):
                runs[interval].append(sampler_fit(config, workdir, interval))
            (on_wall, on_cpu, count), (off_wall, off_cpu, _) = runs[1][-1], runs[0][-1]
            print(
                f"rep {rep + 1}/{args.reps}: fit on {on_wall:.3f}s ({on_cpu:.2f} CPU s, {count} samples), "
                f"off {off_wall:.3f}s ({off_cpu:.2f} CPU s)",
                flush=True,
            )
        per_sample, marks = sampler_cost(workdir, 10_000, config)

    median = statistics.median
    trackers = "without trackers" if args.no_trackers else "with the example's tensorboard + mlflow trackers"
    print(
        f"\nBoston Housing example, {args.epochs} epochs, {args.reps} alternated repetitions in one process, {trackers}"
    )
    print(f"{'':30}{'sampler on (1 s)':>18}{'off':>10}{'ratio':>9}{'paired':>9}")
    for index, label in ((0, "fit step, wall (median)"), (1, "fit step, CPU s (median)")):
        on, off = [run[index] for run in runs[1]], [run[index] for run in runs[0]]
        pairs = median(a / b for a, b in zip(on, off, strict=True))
        print(f"{label:30}{median(on):>17.3f}s{median(off):>9.3f}s{median(on) / median(off):>9.4f}{pairs:>9.4f}")
    print(f"samples per run, sampler on: median {median(run[2] for run in runs[1]):.0f}")
    print("ratio: of the medians; paired: the median of each repetition's on/off ratio. Goal: fit step <= 1.01")
    for name, seconds in per_sample.items():
        print(f"CPU time per sample, {name}: {seconds * 1000:.3f} ms ({seconds * 100:.3f}% of one core at 1 s)")
    for traced, rss, taken in marks:
        print(f"memory after {taken:,} samples: {traced / 1024:.1f} KiB traced, {rss / 2**20:.1f} MiB resident")
    (early_traced, early_rss, early_n), (late_traced, late_rss, late_n) = marks
    print(f"growth over {late_n - early_n:,} samples: {(late_traced - early_traced) / 1024:+.1f} KiB traced, "
          f"{(late_rss - early_rss) / 2**20:+.1f} MiB resident")  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument(
        "--no-trackers",
        action="store_true",
        help="drop the example's tensorboard and mlflow trackers (from both sides)",
    )
    parser.add_argument("--sampler", action="store_true", help="the system-metrics sampler on (1 s) against off")
    parser.add_argument("--epochs", type=int, default=100, help="epochs of each run in --sampler (default 100)")
    args = parser.parse_args()
    if args.sampler:
        return sampler_case(args)

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
        runs: dict[str, list[Any]] = {name: [] for name in contenders}
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
