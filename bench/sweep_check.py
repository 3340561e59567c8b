"""A sweep's sample checked in the capped child, measured: what one trial's start costs now, against the build in the
work horse's own process it replaced.

Between two trials a worker asks the study for the next sample and launches it (``sweeps.advance.start``): the
config is validated and built to check it. The build used to run in the work horse itself, uncapped (a sample the
launch check refuses ran and reached 6.4 GB); it now runs in a child of the worker's build checker, capped as a
launch from the web is. This runs ``start`` on one sweep (random search over four widths and a learning rate) with
each check, after the worker's warm-up (frameworks imported, the checker's fork server ready), and prints the
medians: with the sweep's networks already built (the common case: ``advance._checker`` remembers them) and with
every network new.

    python -m bench.sweep_check             # 15 starts per case
    python -m bench.sweep_check --repeats 30
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if sys.path[0] == str(Path(__file__).resolve().parent):  # run as a file: bench/ must not hide the stdlib
    sys.path[0] = str(ROOT)

from bench.stack import fresh  # noqa: E402 - after the path is right


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    _, env = fresh("sweep-check")
    os.environ.update(env, DJANGO_SETTINGS_MODULE="gymnos_web.settings")
    import django

    django.setup()
    import django_rq
    from django.core.management import call_command

    from experiments.jobs import launching
    from experiments.jobs.queues import EmbeddedRedis
    from experiments.models import Execution
    from experiments.pipeline.build_check import build_problems, network_key
    from experiments.pipeline.preload import import_frameworks
    from sweeps import advance, study
    from sweeps.launching import launch_sweep
    from tests.helpers import tiny

    call_command("migrate", verbosity=0)
    redis_server = EmbeddedRedis().start()
    launching.checker().start_server()  # what a worker does before it forks a horse
    import_frameworks()
    launching.warm_up(wait=True)

    def in_this_process(sweep):
        """The check as it was: built in the calling process, networks remembered as now."""
        key = advance.BUILT_NETWORKS.format(sweep=sweep.pk)
        connection = django_rq.get_connection(sweep.queue)

        def check(config):
            built = bool(connection.sismember(key, network_key(config)))
            problems = build_problems(config, network_built=built)
            if not problems:
                connection.sadd(key, network_key(config))
            return problems

        return check

    try:
        sweep = launch_sweep(
            {
                "base": tiny(epochs=1),
                "parameters": {
                    "model.network[0].units": {"choice": [8, 16, 32, 64]},
                    "model.compilation.optimizer.learning_rate": {
                        "distribution": "log_uniform",
                        "low": 1e-4,
                        "high": 0.1,
                    },
                },
                "method": "random",
                "trials": 10_000,
                "parallel": 1,
            },
            trusted=True,
        )
        opened = study.open_study(sweep)
        connection = django_rq.get_connection(sweep.queue)
        key = advance.BUILT_NETWORKS.format(sweep=sweep.pk)
        checks = {"in the horse (before)": in_this_process(sweep), "capped child (now)": advance._checker(sweep)}
        timings: dict[tuple[str, str], list[float]] = {}
        for networks in ("already built", "all new"):
            for name, check in checks.items():
                advance._checker = lambda sweep, check=check: check  # type: ignore[misc]
                samples = []
                for index in range(args.repeats + 1):  # the first warms this check up: not counted
                    if networks == "all new" or index == 0:
                        connection.delete(key)
                    [trial] = advance.reserve(sweep)
                    started = time.perf_counter()
                    outcome = advance.start(sweep, trial, opened)
                    samples.append(time.perf_counter() - started)
                    assert outcome == "queued", outcome
                    for execution in Execution.objects.filter(status="queued"):
                        Execution.objects.cancel(execution.pk)
                timings[(networks, name)] = samples[1:]
        print(f"One trial's start (ask, validate, check, queue), median of {args.repeats}:")
        print(f"  {'networks':<16}{'in the horse (before)':>24}{'capped child (now)':>22}{'difference':>13}")
        for networks in ("already built", "all new"):
            before, now = (1000 * statistics.median(timings[(networks, name)]) for name in checks)
            print(f"  {networks:<16}{before:22.1f}ms{now:20.1f}ms{now - before:+11.1f}ms")
    finally:
        study.close()
        redis_server.stop()


if __name__ == "__main__":
    main()
