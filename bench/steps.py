"""Per-step metrics at scale (#27): a synthetic run logging 4 metrics every step, through the engine's writer.

Writes ``steps.h5`` with the engine's ``StepWriter`` (no training), a one-step spike injected in ``loss`` at a
random step, then times what the run page asks for: the first draw (the whole run, 2,000 points per line) and
zooms (ranges around the spike, and one far from it), each as the API answers it (``experiments.steps.
read_steps`` to the JSON text; the HTTP and login around it are not timed). Prints the writer's cost per point,
the file's size, sync's summary read, each answer's time and points, whether the spike is in each answer that
contains its step, and the growth of the process's peak memory while reading.

    python bench/steps.py                      # 10,000,000 points: 2,500,000 steps x 4 metrics
    python bench/steps.py --points 1000000     # fewer
    python bench/steps.py --overhead 7         # the engine's cost of log_every_steps: 1 on the Boston example
    python bench/steps.py --trackers --points 200000   # what TensorBoard and MLflow cost per step point

Goals (issue 27): first draw under 200 ms, a zoom under 100 ms, the spike always there, memory growth under 50 MB.
"""

import argparse
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import django

METRICS = ("loss", "mean_absolute_error", "learning_rate", "grad_norm")


def _write(path: Path, steps: int, spike: int, on_flush: Any = None) -> float:
    from experiments.pipeline.steps import StepWriter

    writer = StepWriter(path, on_flush=on_flush)
    started = time.perf_counter()
    per_epoch = 10_000
    for step in range(1, steps + 1):
        base = 1.0 / math.sqrt(step)
        writer.append(
            step,
            {
                "loss": 1000.0 if step == spike else base,
                "mean_absolute_error": base * 2,
                "learning_rate": 1e-3,
                "grad_norm": base * 3,
            },
        )
        if step % per_epoch == 0:
            writer.epoch_end(step)
    writer.close()
    return time.perf_counter() - started


def _answer(folder: Path, start: int | None, end: int | None) -> tuple[float, dict[str, Any]]:
    from experiments.steps import read_steps

    started = time.perf_counter()
    series = read_steps(folder, "loss", start, end, 2000)
    json.dumps(series)
    return time.perf_counter() - started, series


def overhead(reps: int) -> None:
    """The Boston example (its callbacks, no trackers, no early stopping: 25 epochs of 10 steps) in this process,
    alternately with ``log_every_steps: 1`` and without, and the same run as a plain Keras script logging every
    batch (``bench/plain_keras_boston.py --per-batch``: a callback writing the same points with h5py, in its own
    process); the median fit stage of each (metrics.json's ``fit_model``; the script's own ``fit``) and the
    ratios."""
    from experiments.pipeline import load_config, run_experiment

    root = Path(__file__).resolve().parent.parent
    config = json.loads((root / "examples" / "boston_housing.json").read_text())
    config["tracking"]["trackers"] = []
    config["training"]["callbacks"] = [c for c in config["training"]["callbacks"] if c["type"] != "early_stopping"]
    fits: dict[str, list[float]] = {"off": [], "on": [], "plain": []}
    with tempfile.TemporaryDirectory() as temporary:
        path = Path(temporary) / "config.json"
        path.write_text(json.dumps(config))
        for rep in range(reps + 1):
            for arm in ("on", "off", "plain") if rep % 2 else ("plain", "off", "on"):
                if arm == "plain":
                    out = Path(temporary) / f"plain-{rep}"
                    out.mkdir()
                    printed = subprocess.run(
                        [sys.executable, "-m", "bench.plain_keras_boston", str(path), str(out), "--per-batch"],
                        cwd=root, capture_output=True, text=True, check=True,
                    ).stdout  # fmt: skip
                    fit = json.loads(printed.strip().splitlines()[-1])["fit"]
                else:
                    config["training"]["log_every_steps"] = int(arm == "on")
                    trainings, cache = Path(temporary) / "trainings", Path(temporary) / "cache"
                    fit = run_experiment(load_config(config), trainings, cache).metrics["elapsed"]["fit_model"]
                if rep:  # the first round warms TensorFlow up
                    fits[arm].append(fit)
    off, on, plain = (statistics.median(fits[arm]) for arm in ("off", "on", "plain"))
    print(f"fit stage, median of {reps}: without steps {off:.3f} s, with log_every_steps 1 {on:.3f} s, "
          f"plain Keras logging per batch with h5py {plain:.3f} s  (load average {_loadavg()})")  # fmt: skip
    print(f"with steps / without: {on / off:.3f}")
    verdict = "met" if on / plain <= 1.10 else "NOT met"
    print(f"with steps / plain Keras per batch: {on / plain:.3f} (goal <= 1.10: {verdict})")


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def trackers_cost(points: int) -> None:
    """The trackers' cost of step points: ``points`` (4 metrics a step, flushed as the engine flushes) through
    the engine's writer alone, then with TensorBoard, then with MLflow (a SQLite store), each in the writing
    thread (what the training pays), and how long MLflow takes to store them all (its process, beside it)."""
    from experiments.pipeline.trackers import (
        MLflowSpec,
        MLflowTracker,
        RunInfo,
        TensorBoardSpec,
        TensorBoardTracker,
        TrackerSet,
    )

    steps = max(1, points // len(METRICS))
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        for name in ("writer alone", "TensorBoard", "MLflow"):
            folder = root / name.replace(" ", "-")
            folder.mkdir()
            tracker: Any = None
            if name == "TensorBoard":
                tracker = TensorBoardTracker(TensorBoardSpec(type="tensorboard"))
            elif name == "MLflow":
                tracker = MLflowTracker(MLflowSpec(type="mlflow", tracking_uri=f"sqlite:///{root / 'mlflow.db'}"))
            trackers = TrackerSet([tracker] if tracker is not None else [])
            trackers.start(RunInfo(folder, "bench", root, {}, {}, []))
            seconds = _write(folder / "steps.h5", steps, spike=0, on_flush=trackers.log_steps)
            started = time.perf_counter()
            trackers.end("FINISHED")
            stored = time.perf_counter() - started
            line = f"{name:12}: {seconds / (steps * 4) * 1e6:6.2f} µs a point in the writing thread"
            if name == "MLflow":
                dropped = tracker._steps.dropped if tracker._steps is not None else 0
                line += f"; then {stored:.1f} s until MLflow had stored them, {dropped:,} points not sent (backlog)"
            print(line + (f"; failed: {trackers.failed}" if trackers.failed else ""), flush=True)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000_000, help="points in all (4 metrics)")
    parser.add_argument("--seed", type=int, default=27)
    parser.add_argument("--overhead", type=int, default=0, help="instead: REPS runs of the Boston example, on/off")
    parser.add_argument("--trackers", action="store_true", help="instead: the trackers' cost of --points points")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gymnos_web.settings")
    django.setup()
    if args.overhead:
        overhead(args.overhead)
        return 0
    if args.trackers:
        trackers_cost(args.points)
        return 0
    from experiments.steps import step_summaries

    steps = max(1, args.points // len(METRICS))
    spike = random.Random(args.seed).randint(1, steps)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        seconds = _write(folder / "steps.h5", steps, spike)
        size = (folder / "steps.h5").stat().st_size
        print(
            f"writer: {steps * len(METRICS):,} points in {seconds:.1f} s, {seconds / (steps * 4) * 1e9:.0f} ns a point"
        )
        print(f"file: {size / 1e6:.1f} MB ({size / (steps * 4):.1f} bytes a point)")
        started = time.perf_counter()
        summary = step_summaries(folder)["loss"]
        print(f"sync's summary read: {(time.perf_counter() - started) * 1e3:.1f} ms {summary}")
        peak_before = _peak_mb()
        views: list[tuple[str, int | None, int | None]] = [("first draw", None, None)]
        for width in (steps // 10, steps // 1000, 1000):
            views.append((f"zoom {width:,} steps", max(1, spike - width // 2), spike + width // 2))
        views.append(("zoom far from the spike", 1, max(1, min(steps // 1000, spike - 2))))
        ok = True
        for name, start, end in views:
            times = []
            for _ in range(3):
                elapsed, series = _answer(folder, start, end)
                times.append(elapsed)
            contains = (start or 1) <= spike <= (end or steps)
            kept = spike in series["step"] and series["value"][series["step"].index(spike)] == 1000.0
            ok = ok and (kept or not contains)
            print(
                f"{name}: {min(times) * 1e3:.1f} ms best of 3 (first {times[0] * 1e3:.1f} ms), "
                f"{len(series['step'])} points of {series['count']:,}, downsampled={series['downsampled']}, "
                f"spike {'kept' if kept else 'absent'}{'' if contains else ' (not in range)'}"
            )
        growth = _peak_mb() - peak_before
        print(f"peak memory growth while reading: {growth:.1f} MB")
        memory = "under" if growth < 50 else "OVER"
        print(f"verdict: spike {'in every answer containing it' if ok else 'LOST'}; memory {memory} 50 MB")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
