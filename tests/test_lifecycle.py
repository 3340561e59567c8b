"""An execution's status moves only through its transitions, each from the states it may leave."""

import datetime as dt
from pathlib import Path

import pytest
from django.utils import timezone

from experiments.models import ENDED, LIVE, Execution, Experiment, MetricHistory, Status
from experiments.models.lifecycle import WORKER_LOST, FolderOutcome, execution_ended

pytestmark = pytest.mark.django_db

ALL = [status for status, _ in Status.choices]


def row(status="queued", **fields):
    experiment, _ = Experiment.objects.get_or_create(name="boston_housing")
    return Execution.objects.create(experiment=experiment, status=status, **fields)


def status(execution):
    return Execution.objects.status_of(execution.pk)


def test_the_status_groups_are_live_and_ended():
    assert LIVE == {"queued", "running"}
    assert ENDED == {"succeeded", "failed", "cancelled", "pruned"}


@pytest.mark.parametrize("start", ALL)
def test_claim_moves_only_a_queued_run_to_running(start):
    execution = row(start)
    assert Execution.objects.claim(execution.pk, "worker-1") is (start == "queued")
    execution.refresh_from_db()
    if start == "queued":
        assert execution.status == "running"
        assert execution.worker == "worker-1"
        assert execution.heartbeat_at
    else:
        assert execution.status == start
        assert execution.worker == ""


@pytest.mark.parametrize("start", ALL)
def test_finish_ends_only_a_running_run(start):
    execution = row(start)
    ended = Execution.objects.finish(execution.pk)
    assert ended == ("succeeded" if start == "running" else start)
    pruned = row(start)
    assert Execution.objects.finish(pruned.pk, pruned=True) == ("pruned" if start == "running" else start)
    failed = row(start)
    assert Execution.objects.finish(failed.pk, "ValueError: boom") == ("failed" if start == "running" else start)
    if start == "running":
        failed.refresh_from_db()
        assert failed.error == "ValueError: boom"
        assert failed.finished_at
        assert failed.heartbeat_at is None


def test_a_cancel_while_the_run_finishes_stands():
    execution = row("running")
    assert Execution.objects.cancel(execution.pk) == "running"
    assert Execution.objects.finish(execution.pk) == "cancelled"
    execution.refresh_from_db()
    assert execution.error == "cancelled by a user"


@pytest.mark.parametrize("start", ALL)
def test_cancel_says_where_it_cancelled_from_and_leaves_ended_runs_alone(start):
    execution = row(start)
    assert Execution.objects.cancel(execution.pk, "because") == (start if start in LIVE else None)
    assert status(execution) == ("cancelled" if start in LIVE else start)


@pytest.mark.parametrize("start", ALL)
def test_fail_moves_a_live_run_only(start):
    execution = row(start)
    assert Execution.objects.fail(execution.pk, "the job failed outside the training") is (start in LIVE)
    assert status(execution) == ("failed" if start in LIVE else start)


def test_a_lost_worker_fails_only_runs_whose_heartbeat_stopped():
    now = timezone.now()
    stale = row("running", heartbeat_at=now - dt.timedelta(seconds=31))
    fresh = row("running", heartbeat_at=now - dt.timedelta(seconds=5))
    ended = row("succeeded", heartbeat_at=now - dt.timedelta(minutes=5))
    assert Execution.objects.mark_lost(now) == 1
    stale.refresh_from_db()
    assert stale.status == "failed"
    assert stale.error == WORKER_LOST
    assert status(fresh) == "running"
    assert status(ended) == "succeeded"
    assert Execution.objects.mark_worker_lost(fresh.pk)
    assert status(fresh) == "failed"
    assert not Execution.objects.mark_worker_lost(ended.pk)


def test_a_run_that_finished_before_a_shutdown_stays_succeeded():
    finished = row("running", worker="up-host-1-0")
    training = row("running", worker="up-host-1-0")
    elsewhere = row("running", worker="rq-other")
    Execution.objects.finish(finished.pk)
    assert Execution.objects.cancel_running("cancelled: up was stopped", "up-host-1-") == [training.pk]
    assert status(finished) == "succeeded"
    assert status(training) == "cancelled"
    assert status(elsewhere) == "running"


def test_missing_is_any_run_whose_folder_went_and_the_folder_decides_again_when_it_returns():
    gone = row("succeeded", job_id="execution-1", fingerprint="abc")
    assert Execution.objects.mark_missing([gone.pk]) == 1
    assert Execution.objects.mark_missing([gone.pk]) == 0
    gone.refresh_from_db()
    assert gone.status == "missing"
    assert gone.fingerprint == ""
    Execution.objects.adopt_folder_outcomes([FolderOutcome(gone.pk, "succeeded", "", timezone.now())])
    assert status(gone) == "succeeded"


def test_a_folder_decides_only_for_runs_no_worker_owns_and_never_moves_an_ended_run_back():
    cli_run = row("running")
    worker_run = row("running", job_id="execution-7")
    ended_cli_run = row("failed")
    Execution.objects.adopt_folder_outcomes(
        [
            FolderOutcome(cli_run.pk, "succeeded", "", timezone.now()),
            FolderOutcome(worker_run.pk, "failed", "metrics.json: missing", timezone.now()),
            FolderOutcome(ended_cli_run.pk, "running", "", None),
        ]
    )
    assert status(cli_run) == "succeeded"
    assert status(worker_run) == "running"
    assert status(ended_cli_run) == "failed"


def test_record_epoch_stores_every_history_through_one_method_and_keeps_the_run_alive():
    execution = row("running", heartbeat_at=timezone.now() - dt.timedelta(seconds=20))
    before = execution.heartbeat_at
    Execution.objects.record_epoch(execution.pk, {"loss": [2.0, 1.0], "val_loss": [3.0, float("nan")]}, 5)
    execution.refresh_from_db()
    assert execution.history("val_loss") == [3.0, None]
    assert execution.epochs == 2
    assert execution.epochs_total == 5
    assert execution.final_loss == 1.0
    assert execution.heartbeat_at > before


def test_a_posted_epoch_starts_a_remote_run_and_its_last_one_ends_it():
    remote = row("queued", epochs_total=2)
    assert Execution.objects.record_posted_epoch(remote.pk, 0, {"loss": 2.0}).status == "running"
    ended = Execution.objects.record_posted_epoch(remote.pk, 1, {"loss": 1.0})
    assert ended.status == "succeeded"
    assert ended.history("loss") == [2.0, 1.0]
    # A run a worker trains is the worker's to end, whatever is posted for it.
    worker_run = row("running", job_id="execution-9", epochs_total=1)
    assert Execution.objects.record_posted_epoch(worker_run.pk, 0, {"loss": 1.0}).status == "running"


def test_store_replaces_only_what_it_is_asked_to():
    execution = row("succeeded")
    MetricHistory.objects.store({execution.pk: {"loss": [1.0], "lr": [0.1]}})
    MetricHistory.objects.store({execution.pk: {"loss": [0.5]}})
    assert dict(execution.histories.values_list("name", "values")) == {"loss": [0.5], "lr": [0.1]}
    MetricHistory.objects.store({execution.pk: {"loss": [0.4]}}, replace=True)
    assert dict(execution.histories.values_list("name", "values")) == {"loss": [0.4]}


def test_a_worker_claims_its_folder_name_before_the_folder_exists(tmp_path):
    execution = row("running", job_id="execution-1")
    taken = row("succeeded", folder_name="10-00-00__29-11-2026")
    path = Path(tmp_path, "boston_housing", "executions", "10-00-00__29-11-2026")
    assert not Execution.objects.claim_folder(execution.pk, path)  # a row holds that name: try the next
    assert Execution.objects.claim_folder(execution.pk, path.with_name("10-00-00__29-11-2026_2"))
    execution.refresh_from_db()
    assert execution.folder_name == "10-00-00__29-11-2026_2"
    assert Execution.objects.filter(pk=taken.pk).exists()


@pytest.mark.parametrize("start", ALL)
def test_only_an_ended_or_missing_run_is_deleted_and_restore_gives_its_status_back(start, django_user_model):
    execution = row(start)
    alice = django_user_model.objects.create_user("alice")
    deletable = start in ENDED or start == "missing"
    assert Execution.objects.delete_run(execution.pk, alice) is deletable
    execution.refresh_from_db()
    if not deletable:
        assert execution.status == start
        assert execution.deleted_at is None
        return
    assert execution.status == "deleted"
    assert execution.deleted_by == alice
    assert execution.status_before_delete == start
    assert not Execution.objects.delete_run(execution.pk, alice)  # already in the trash
    assert Execution.objects.restore(execution.pk)
    execution.refresh_from_db()
    assert execution.status == start
    assert execution.deleted_at is None
    assert execution.deleted_by is None
    assert not Execution.objects.restore(execution.pk)


def test_visible_runs_leave_out_the_deleted_and_by_default_the_archived():
    shown = row("succeeded")
    archived = row("succeeded", archived=True)
    deleted = row("deleted", status_before_delete="succeeded")
    assert list(Execution.objects.visible().values_list("pk", flat=True)) == [shown.pk]
    assert sorted(Execution.objects.visible(archived=True).values_list("pk", flat=True)) == [shown.pk, archived.pk]
    assert deleted.pk not in Execution.objects.visible(archived=True).values_list("pk", flat=True)


def test_a_deleted_runs_folder_is_in_the_trash_not_missing():
    deleted = row("deleted", status_before_delete="succeeded")
    assert Execution.objects.mark_missing([deleted.pk]) == 0
    assert status(deleted) == "deleted"


@pytest.mark.django_db(transaction=True)
def test_a_transition_that_ends_a_run_says_so_once_committed():
    heard = []

    def listen(sender, pk, status, **kwargs):
        heard.append((pk, status))

    execution_ended.connect(listen)
    try:
        queued, running = row("queued"), row("running")
        Execution.objects.claim(queued.pk, "w")
        Execution.objects.finish(queued.pk, pruned=True)
        Execution.objects.cancel(running.pk)
        Execution.objects.finish(running.pk)  # already cancelled: nothing ends twice
    finally:
        execution_ended.disconnect(listen)
    assert heard == [(queued.pk, "pruned"), (running.pk, "cancelled")]
