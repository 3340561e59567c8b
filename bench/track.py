"""What one ``run.log`` call of the tracking client (gymnos_track) costs a training script.

In one process: ``--calls`` calls of ``run.log`` with ``--metrics`` values each (default flush:
metrics.json rewritten every 2 s), timed as a whole, five times; the median per call, and, as the
same-run baseline, the same loop appending the same dicts to a Python list (what a script that
tracks nothing does with its numbers). Then the worst single call over a run of 100,000 epochs,
which includes the metrics.json rewrites of a long history.

The same for per-step logging (``run.log(values, step=N)``: points kept in memory, appended to steps.h5
every second or 10,000 points).

    python -m bench.track                    # 20,000 calls of 4 metrics
    python -m bench.track --calls 100000 --metrics 10

Goal (issue 28): under 50 µs a call, no thread.
"""

import argparse
import statistics
import sys
import tempfile
import threading
import time

import gymnos_track

GOAL_US = 50.0


def _values(epoch, metrics):
    return {f"metric_{index}": 1.0 / (epoch + index + 1) for index in range(metrics)}


def _per_call(calls, metrics, root):
    run = gymnos_track.start(experiment="bench", root=root)
    values = [_values(epoch, metrics) for epoch in range(calls)]
    started = time.perf_counter()
    for item in values:
        run.log(item)
    elapsed = time.perf_counter() - started
    run.finish()
    return elapsed / calls * 1e6


def _per_step(calls, metrics, root):
    """``run.log(values, step=N)``: steps.h5 appended in memory, flushed every second or 10,000 points."""
    run = gymnos_track.start(experiment="bench_steps", root=root)
    values = [_values(step, metrics) for step in range(calls)]
    run.log(values[0], step=1)  # the first step opens steps.h5 (h5py imported): once a run, not per call
    started = time.perf_counter()
    for step, item in enumerate(values[1:], start=2):
        run.log(item, step=step)
    elapsed = time.perf_counter() - started
    run.finish()
    return elapsed / (calls - 1) * 1e6


def _baseline(calls, metrics):
    values = [_values(epoch, metrics) for epoch in range(calls)]
    kept = []
    started = time.perf_counter()
    for item in values:
        kept.append(dict(item))
    return (time.perf_counter() - started) / calls * 1e6


def _worst(epochs, metrics, root):
    run = gymnos_track.start(experiment="bench_long", root=root)
    worst = 0.0
    for epoch in range(epochs):
        item = _values(epoch, metrics)
        started = time.perf_counter()
        run.log(item)
        worst = max(worst, time.perf_counter() - started)
    run.finish()
    return worst * 1e3, run.flush_seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--metrics", type=int, default=4)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    threads = threading.active_count()
    with tempfile.TemporaryDirectory() as root:
        figures = [_per_call(args.calls, args.metrics, root) for _ in range(args.reps)]
        step_figures = [_per_step(args.calls, args.metrics, root) for _ in range(args.reps)]
        baseline = statistics.median(_baseline(args.calls, args.metrics) for _ in range(args.reps))
        worst_ms, flush = _worst(100_000, args.metrics, root)
    median = statistics.median(figures)
    print(f"run.log, {args.metrics} metrics, {args.calls:,} calls x {args.reps}: median {median:.1f} µs a call "
          f"(runs: {', '.join(f'{f:.1f}' for f in figures)})")  # fmt: skip
    print(
        f"baseline (the same dicts kept in a list): {baseline:.2f} µs a call; "
        f"the client adds {median - baseline:.1f} µs"
    )
    step_median = statistics.median(step_figures)
    step_runs = ", ".join(f"{figure:.1f}" for figure in step_figures)
    print(f"run.log(..., step=N), {args.metrics} metrics, {args.calls:,} calls x {args.reps}: median "
          f"{step_median:.1f} µs a call, steps.h5 flushes included (runs: {step_runs})")  # fmt: skip
    print(f"100,000 epochs: worst single call {worst_ms:.1f} ms (a metrics.json rewrite; every {flush:.1f} s by then)")
    print(f"threads started by the client: {threading.active_count() - threads}")
    met = median < GOAL_US and step_median < GOAL_US
    print(f"goal: under {GOAL_US:.0f} µs a call (epochs and steps): {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
