"""``manage.py sync_trainings`` and the RQ job: thin entry points over experiments.index.sync."""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from redis import Redis
from rq import Queue

from experiments.jobs.tasks import sync_trainings_job
from experiments.models import Execution
from tests.folders import write_execution

pytestmark = pytest.mark.django_db


def sync_command(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("sync_trainings", *args, stdout=out, stderr=err)
    return out.getvalue().splitlines(), err.getvalue().splitlines()


@pytest.fixture
def root(trainings):
    trainings.mkdir()
    write_execution(trainings, name="good")
    write_execution(trainings, name="bad", metrics=b'{"metrics": {"loss": [1.0,')
    return trainings


def test_it_prints_the_counts_last_and_each_problem(root):
    out, err = sync_command("--root", str(root))
    assert out[-1] == "indexed 2, unchanged 0, errors 1"
    assert err == [
        "boston_housing/bad: metrics.json: is not valid JSON (Expecting value at line 1, column 27); the file is truncated or not JSON"  # noqa: E501
    ]
    assert sync_command("--root", str(root))[0][-1] == "indexed 0, unchanged 2, errors 0"


def test_it_reads_the_root_from_the_settings(root, settings):
    settings.GYMNOS_TRAININGS_ROOT = root
    out, _ = sync_command()
    assert out[-1] == "indexed 2, unchanged 0, errors 1"


def test_it_says_how_many_rows_went_missing(root):
    sync_command("--root", str(root))
    (root / "boston_housing" / "executions" / "good").rename(root.parent / "moved")
    out, _ = sync_command("--root", str(root))
    assert out == ["marked missing 1 (their folders are gone; the rows are kept)", "indexed 0, unchanged 1, errors 0"]


def test_a_root_that_is_not_a_directory_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="is not a directory"):
        sync_command("--root", str(tmp_path / "nope"))


def test_the_job_returns_the_counts(root):
    result = sync_trainings_job(str(root))
    assert {key: result[key] for key in ("indexed", "unchanged", "errors", "missing")} == {
        "indexed": 2,
        "unchanged": 0,
        "errors": 1,
        "missing": 0,
    }
    json.dumps(result)  # RQ keeps it as the job's result


def test_the_job_runs_through_a_real_redis_queue(root):
    queue = Queue("gymnos-test-sync", connection=Redis.from_url("redis://127.0.0.1:6379/0"), is_async=False)
    job = queue.enqueue(sync_trainings_job, str(root))
    assert job.is_finished
    report = job.return_value()
    assert report is not None
    assert report["indexed"] == 2
    assert Execution.objects.count() == 2
    job.delete()
