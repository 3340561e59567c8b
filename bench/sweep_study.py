"""A sweep's study between two trials, measured: what one advance's Optuna work costs as the study grows.

Between two trials a worker opens the sweep's study, tells it how the trial ended and asks it for the next
one (``sweeps.advance``). Optuna reads the study's trials through a cache; a new cache reads every trial
first. ``sweeps.study.kept_storage`` keeps one cache for the life of a process, so a work horse that
trains a sweep's trials one after the other (follow-on runs) reads only what is new. This runs that step
(open, ask, tell: TPE, two parameters, 30 reported epochs a trial) on studies of growing size in
Gymnos' own SQLite database, each time with this process's kept cache (a follow-on run) and with a new
one (a fresh work horse, as every trial had before), and prints the medians and their ratio.

    python -m bench.sweep_study                 # studies of 24, 100 and 300 trials
    python -m bench.sweep_study --sizes 24 1000

Goal: with the kept cache the step costs about the same at every size (a fresh cache grows with the study).
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if sys.path[0] == str(Path(__file__).resolve().parent):  # run as a file: bench/ must not hide the stdlib
    sys.path[0] = str(ROOT)

from bench.stack import fresh  # noqa: E402 - after the path is right

EPOCHS = 30
REPEATS = 9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[24, 100, 300])
    args = parser.parse_args()
    _, env = fresh("sweep-study")
    os.environ.update(env, DJANGO_SETTINGS_MODULE="gymnos_web.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from sweeps import study
    from sweeps.models import Sweep

    call_command("migrate", verbosity=0)
    from sweeps.launching import plan

    data = {
        "name": "bench",
        "base": json.loads((ROOT / "examples" / "boston_housing.json").read_text()),
        "parameters": {
            "model.compilation.optimizer.learning_rate": {"distribution": "log_uniform", "low": 1e-4, "high": 0.1},
            "model.network[0].units": {"choice": [16, 32, 64, 128]},
        },
        "method": "tpe",
        "trials": 10_000,
    }
    document = plan(data, trusted=True).document.model_dump(mode="json", exclude={"base"}) | {"base": data["base"]}
    print(f"One advance's Optuna work (open the study, tell a trial, ask the next; TPE), median of {REPEATS}:")
    print(f"  {'trials':>8}{'fresh cache':>14}{'kept cache':>13}{'ratio':>8}")
    for size in args.sizes:
        sweep = Sweep.objects.create(
            name=f"bench {size}", document=document, base_config=data["base"], method="tpe", trials_total=10_000,
            parallel=2, metric="val_loss", which="best", direction="minimize", study_name=f"bench-{size}", seed=7,
            queue="default",
        )  # fmt: skip
        fill(study, sweep, size)
        timings: dict[str, list[float]] = {}
        for label in ("fresh cache", "kept cache", "fresh cache ", "kept cache "):
            samples = []
            for _ in range(REPEATS):
                if label.startswith("fresh"):
                    study._kept.cache_clear()  # what a fresh work horse starts with
                started = time.perf_counter()
                step(study, sweep)
                samples.append(time.perf_counter() - started)
            timings.setdefault(label.strip(), []).append(statistics.median(samples))
        fresh_ms, kept_ms = (1000 * min(timings[name]) for name in ("fresh cache", "kept cache"))
        print(f"  {size:8d}{fresh_ms:12.1f}ms{kept_ms:11.1f}ms{fresh_ms / kept_ms:7.1f}x")


def fill(study, sweep, size):
    opened = study.open_study(sweep)
    space = study.distributions(study.document_of(sweep))
    for index in range(size):
        trial = opened.ask(space)
        for epoch in range(EPOCHS):
            trial.report(1.0 / (epoch + 1) + index * 1e-3, epoch + 1)
        opened.tell(trial, 1.0 + index * 1e-3)


def step(study, sweep):
    """What ``advance`` does with the study between two trials: open it, tell the one that ended, ask the next."""
    opened = study.open_study(sweep)
    running = [trial for trial in opened.get_trials(deepcopy=False) if trial.state.name == "RUNNING"]
    if running:
        study.tell(sweep, running[-1].number, "succeeded", 2.0, opened)
    study.ask(sweep, len(opened.get_trials(deepcopy=False)), opened)


if __name__ == "__main__":
    main()
