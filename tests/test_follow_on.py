"""Follow-on runs (``experiments.jobs.follow_on``): when a work horse takes the next run itself, and when not.

The rules on a real Redis and the test database, with RQ's own jobs and queues; what a worker does with
them (``manage.py rqworker``, real training) is in ``test_follow_on_workers``.
"""

import logging
import time

import django_rq
import pytest
from rq.job import Job
from rq.suspension import resume, suspend
from rq.worker import Worker

from experiments.jobs import launching
from experiments.jobs.follow_on import Chain, clear_keras_state
from experiments.models import Execution
from tests.helpers import tiny
from tests.workers import flush, queues_at

pytestmark = pytest.mark.django_db(transaction=True)

WORKER = "follow-on-test"


def no_build_check(config):
    return []  # these tests are about the queue: the model's build is checked elsewhere


def queue_run(**tracking):
    config = tiny(epochs=1)
    config["tracking"]["params"].update(tracking)
    return launching.launch(config, check=no_build_check)


@pytest.fixture
def redis_queues(settings, monkeypatch):
    settings.RQ_QUEUES = queues_at()
    monkeypatch.setenv("RQ_WORKER_ID", WORKER)
    flush()
    connection = django_rq.get_connection("default")
    connection.hset(Worker.redis_worker_namespace_prefix + WORKER, "queues", "default,gpu")
    yield connection
    resume(connection)
    flush()


@pytest.fixture
def chain(redis_queues):
    """The chain of a horse whose job (that of a run that just ended) has run a moment."""
    ended = queue_run()
    job = Job.fetch(ended.job_id, connection=redis_queues)
    django_rq.get_queue("default").remove(job)  # a worker took it
    return Chain(job)


def queued_job_ids(name="default"):
    return django_rq.get_queue(name).get_job_ids()


def test_a_run_first_in_line_is_claimed_under_this_job_and_its_own_job_leaves_the_queue(chain, redis_queues):
    following = queue_run()
    assert chain.take(following.pk)
    following.refresh_from_db()
    assert following.status == "running"
    assert following.worker == WORKER
    # A cancel now stops the job this horse runs, which trains it.
    assert following.job_id == chain.job.id
    assert queued_job_ids() == []
    assert not Job.exists(launching.job_id_for(following.pk), connection=redis_queues)


def test_a_run_behind_another_users_run_is_left_in_line(chain):
    other = queue_run()
    following = queue_run()
    assert not chain.take(following.pk)
    assert Execution.objects.get(pk=following.pk).status == "queued"
    assert queued_job_ids() == [other.job_id, following.job_id]


def test_a_run_waits_while_a_queue_this_worker_reads_first_has_a_job(chain, redis_queues):
    redis_queues.hset(Worker.redis_worker_namespace_prefix + WORKER, "queues", "gpu,default")
    on_gpu = queue_run(device="gpu")
    following = queue_run()
    assert not chain.take(following.pk)
    django_rq.get_queue("gpu").remove(on_gpu.job_id)
    assert chain.take(following.pk)


def test_a_run_on_a_queue_this_worker_does_not_read_is_not_taken(chain):
    on_gpu = queue_run(device="gpu")
    connection = chain.job.connection
    connection.hset(Worker.redis_worker_namespace_prefix + WORKER, "queues", "default")
    assert not chain.take(on_gpu.pk)
    assert queued_job_ids("gpu") == [on_gpu.job_id]


def test_a_run_cancelled_meanwhile_is_not_taken(chain):
    following = queue_run()
    launching.cancel(following)
    assert not chain.take(following.pk)
    assert Execution.objects.get(pk=following.pk).status == "cancelled"


@pytest.fixture
def offered(chain, monkeypatch):
    """A queued run first in line that a feature offers as the follow-on of any run."""
    following = queue_run()
    monkeypatch.setattr("experiments.jobs.follow_on.FOLLOW_ON", [lambda ended: [following.pk]])
    return following


def test_the_run_a_feature_offers_is_taken_next(chain, offered):
    assert chain.next_run(ended=0) == offered.pk
    assert chain.taken == 1


@pytest.mark.parametrize(
    "stop",
    [
        "the worker was asked to stop",
        "the queues are suspended",
        "follow-on runs are turned off",
        "the job used half its timeout",
        "the horse kept too much memory",
    ],
)
def test_no_run_is_taken_when(stop, chain, offered, redis_queues, settings):
    held = None
    if stop == "the worker was asked to stop":
        redis_queues.hset(Worker.redis_worker_namespace_prefix + WORKER, "shutdown_requested_date", "2026-11-29")
    elif stop == "the queues are suspended":
        suspend(redis_queues)
    elif stop == "follow-on runs are turned off":
        settings.GYMNOS_FOLLOW_ON_RUNS = 0
    elif stop == "the job used half its timeout":
        chain.job.timeout = 60
        chain.started = time.monotonic() - 31
    else:
        settings.GYMNOS_JOB_MEMORY_MB = 400  # a horse may keep a quarter: 100 MB
        held = b"x" * (300 * 2**20)
    assert chain.next_run(ended=0) is None
    assert Execution.objects.get(pk=offered.pk).status == "queued"
    assert queued_job_ids() == [offered.job_id]
    del held


def test_without_a_job_or_a_worker_nothing_follows(offered, monkeypatch):
    assert Chain(None).next_run(ended=0) is None
    monkeypatch.delenv("RQ_WORKER_ID")
    assert Chain(Job.fetch(offered.job_id, connection=django_rq.get_connection("default"))).next_run(0) is None


def test_between_two_runs_tensorflow_no_longer_warns_that_each_new_model_is_traced_again(caplog):
    clear_keras_state()
    tensorflow_log = logging.getLogger("tensorflow")
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        tensorflow_log.warning("5 out of the last 5 calls to <function f> triggered tf.function retracing. Tracing...")
        tensorflow_log.warning("something else went wrong")
    assert [record.getMessage() for record in caplog.records] == ["something else went wrong"]
