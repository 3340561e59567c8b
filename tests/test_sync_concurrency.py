"""Two syncs of one tree at the same time (real threads, real transactions) index each folder once."""

import threading
from typing import Any

import pytest
from django.db import connection

from experiments.index.sync import sync_trainings
from experiments.models import Execution, Experiment, MetricHistory
from tests.folders import SEED_METRICS, write_execution

pytestmark = pytest.mark.django_db(transaction=True)


def run_at_once(count, target):
    """Start ``count`` threads together; return what each returned or raised."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index):
        try:
            barrier.wait()
            results[index] = target()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            results[index] = exc
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_two_syncs_at_once_produce_no_duplicates(trainings):
    trainings.mkdir()
    for dataset in ("boston_housing", "iris"):
        for index in range(25):
            write_execution(trainings, name=f"10-00-{index:02d}__01-01-2024", dataset=dataset)

    # Small batches, so the two interleave many transactions instead of one each.
    reports = run_at_once(2, lambda: sync_trainings(trainings, batch_size=5))

    assert not [report for report in reports if isinstance(report, BaseException)], reports
    assert Experiment.objects.count() == 2
    assert Execution.objects.count() == 50
    assert MetricHistory.objects.count() == 50 * len(SEED_METRICS["metrics"])
    assert set(Execution.objects.values_list("status", flat=True)) == {Execution.Status.SUCCEEDED}
    # Between them every folder was indexed at least once, and each sync saw every folder.
    assert all(report.indexed + report.unchanged == 50 for report in reports)
    assert sync_trainings(trainings).line() == "indexed 0, unchanged 50, errors 0"
