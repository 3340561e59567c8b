"""The list of sweeps: each sweep's counts and best value, counted by the database without reading its trials."""

import itertools
import tracemalloc

import pytest

from experiments.models import Execution, Experiment, Status
from sweeps.models import Sweep, Trial
from sweeps.summary import list_summaries, summarise

pytestmark = pytest.mark.django_db

numbers = itertools.count()


def a_sweep(trials_total=10, **fields):
    number = next(numbers)
    defaults = {
        "name": f"sweep {number}", "document": {"parameters": {}}, "base_config": {}, "method": "random",
        "trials_total": trials_total, "parallel": 2, "metric": "val_loss", "which": "best", "direction": "minimize",
        "study_name": f"gymnos-sweep-test-{number}", "seed": 0, "queue": "default",
    }  # fmt: skip
    return Sweep.objects.create(**{**defaults, **fields})


def runs(statuses, summaries=None):
    experiment, _ = Experiment.objects.get_or_create(name="boston_housing")
    summaries = summaries or [{}] * len(statuses)
    made = Execution.objects.bulk_create(
        [
            Execution(experiment=experiment, status=status, summary=summary)
            for status, summary in zip(statuses, summaries, strict=True)
        ]
    )
    return made


def trials(sweep, rows):
    """``rows``: dicts of Trial fields, numbered in order."""
    Trial.objects.bulk_create([Trial(sweep=sweep, number=number, **row) for number, row in enumerate(rows)])


def every_state(sweep):
    """A trial in each state a trial can be in, objectives told and not yet told."""
    done, untold, pruned, queued, running, cancelled, failed_run = runs(
        [Status.SUCCEEDED, Status.SUCCEEDED, Status.PRUNED, Status.QUEUED, Status.RUNNING, Status.CANCELLED, "failed"],
        [{}, {"val_loss": {"best": 1.5, "last": 2.5}}, {}, {}, {}, {}, {}],
    )
    trials(
        sweep,
        [
            {"execution": done, "value": 3.0, "outcome": "succeeded"},
            {"execution": untold},  # ended, the study not told yet: its summary's value counts
            {"execution": pruned, "value": 0.5, "outcome": "pruned"},  # pruned: never the best
            {"execution": queued},
            {"execution": running},
            {"execution": cancelled, "outcome": "cancelled"},
            {"execution": failed_run, "outcome": "failed"},
            {"error": "model.network[0]: dense rejected its arguments", "outcome": "failed"},
            {},  # being asked for
            {"outcome": "succeeded", "value": 2.0},  # its run went (a trial keeps its outcome)
        ],
    )


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"direction": "maximize"},
        {"which": "last"},
        {"direction": "maximize", "which": "last"},
    ],
)
def test_the_list_shows_what_the_sweep_page_shows(fields):
    sweep = a_sweep(**fields)
    every_state(sweep)
    (listed,) = list_summaries([sweep])
    page = summarise(sweep)
    assert listed["counts"] == page["counts"]
    assert listed["best"] == ({"value": page["best"]["value"]} if page["best"] else None)


def test_counts_and_best_of_each_sweep():
    first, second, empty = a_sweep(), a_sweep(direction="maximize"), a_sweep()
    every_state(first)
    every_state(second)
    counts = {"done": 3, "queued": 2, "running": 1, "pruned": 1, "failed": 3, "total": 10}
    assert list_summaries([first, second, empty]) == [
        {"counts": counts, "best": {"value": 1.5}},
        # Maximising val_loss, its best is not the sweep's "best": the untold run does not count.
        {"counts": counts, "best": {"value": 3.0}},
        {"counts": {"done": 0, "queued": 0, "running": 0, "pruned": 0, "failed": 0, "total": 10}, "best": None},
    ]


def test_the_list_of_two_10000_trial_sweeps_reads_no_trial(owner_client):
    for _ in range(2):
        sweep = a_sweep(trials_total=10_000)
        made = runs([Status.SUCCEEDED] * 5_000)
        trials(sweep, [{"execution": run, "value": float(i), "outcome": "succeeded"} for i, run in enumerate(made)])
        Trial.objects.bulk_create([Trial(sweep=sweep, number=5_000 + i) for i in range(5_000)])
    owner_client.get("/sweeps/")  # the first request's start-up is not the list's cost
    tracemalloc.start()
    page = owner_client.get("/sweeps/").content.decode()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # done, running, queued (a trial not yet queued counts as queued)
    assert page.count('<td class="num">5000</td><td class="num">0</td><td class="num">5000</td>') == 2
    assert peak < 4 << 20  # 20,000 trials and their runs as objects took tens of MB
