"""What does the evaluation report cost a run? Measured against the fit of the same run.

Trains the seed's Boston Housing example (without its trackers, so the fit is Keras' alone and the
ratio is the stricter one) through ``manage.py train``, each run a fresh process, so the report pays
its cold start (the first prediction, scikit-learn's metrics) as it does in a real run. For each run
it reads the fit time from metrics.json (``elapsed.fit_model``) and the report's own time from
evaluation.json (``seconds``: everything ``write_report`` does: predicting the test split, the
figures, the model summary, writing the file), and prints their ratio; Keras' own ``model.evaluate``
on the same split (``elapsed.evaluate_model``) is printed beside it for scale. Medians over the runs.

    python -m bench.evaluation              # 5 runs
    python -m bench.evaluation --reps 9 --config examples/boston_housing.json --keep-trackers

Goal (issue 16): the report costs under 5% of the run's fit time.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.overhead import train

ROOT = Path(__file__).resolve().parent.parent
GOAL = 0.05


def train_once(config_file, workdir):
    folder, _ = train(config_file, workdir)
    metrics = json.loads((folder / "metrics.json").read_text())
    report = json.loads((folder / "evaluation.json").read_text())
    return {
        "fit": metrics["elapsed"]["fit_model"],
        "evaluate": metrics["elapsed"]["evaluate_model"],
        "report": report["seconds"],
        "epochs": len(metrics["metrics"]["loss"]),
        "samples": report["samples"],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--config", default=str(ROOT / "examples" / "boston_housing.json"))
    parser.add_argument("--keep-trackers", action="store_true", help="train with the config's trackers as given")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="gymnos-bench-evaluation-") as tmp:
        workdir = Path(tmp)
        config = json.loads(Path(args.config).read_text())
        if not args.keep_trackers:
            config.setdefault("tracking", {})["trackers"] = []
        config_file = workdir / "config.json"
        config_file.write_text(json.dumps(config))
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"],
            env={**os.environ, "DATABASE_URL": f"sqlite:///{workdir / 'index.sqlite3'}"},
            cwd=ROOT,
            check=True,
        )
        runs = []
        for rep in range(args.reps):
            run = train_once(config_file, workdir)
            runs.append(run)
            print(
                f"  run {rep + 1}: fit {run['fit']:.3f} s ({run['epochs']} epochs), "
                f"report {run['report'] * 1000:.1f} ms on {run['samples']} test samples, "
                f"model.evaluate {run['evaluate'] * 1000:.1f} ms, "
                f"report / fit = {run['report'] / run['fit']:.2%}",
                flush=True,
            )

    fit = statistics.median(run["fit"] for run in runs)
    report = statistics.median(run["report"] for run in runs)
    evaluate = statistics.median(run["evaluate"] for run in runs)
    ratio = statistics.median(run["report"] / run["fit"] for run in runs)
    trackers = "with the config's trackers" if args.keep_trackers else "without trackers"
    print(
        f"\n{Path(args.config).name}, {args.reps} runs, each a fresh `manage.py train` process, {trackers} (medians):"
    )
    print(f"  fit step                       {fit:8.3f} s")
    print(
        f"  evaluation report              {report * 1000:8.1f} ms   ({report / evaluate:.1f}x Keras' model.evaluate)"
    )
    print(f"  Keras' model.evaluate (test)   {evaluate * 1000:8.1f} ms")
    print(f"  report / fit                   {ratio:8.2%}")
    print(f"goal (report under {GOAL:.0%} of the fit): {'met' if ratio < GOAL else 'NOT met'}")
    return 0 if ratio < GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
