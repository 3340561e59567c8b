"""Sync's fast path: a run that ended and has been still is stamped, and a re-sync stats its directories instead
of listing its files; whatever its writers do after that (a rename, a new file, a removed checkpoint, a folder
replaced) is still seen, and ``sync_trainings --full`` reads what was changed in place."""

import json
import os
import shutil
import time

import pytest
from django.core.management import call_command
from django.utils import timezone

from experiments.curation import sidecar
from experiments.index.sync import sync_folder, sync_trainings
from experiments.models import Execution, Status
from tests.folders import SEED_CHECKPOINTS, SEED_METRICS, write_execution

pytestmark = pytest.mark.django_db

HOUR = 3600


@pytest.fixture
def root(trainings, settings):
    trainings.mkdir()
    settings.GYMNOS_TRAININGS_ROOT = str(trainings)
    return trainings


def backdate(folder, seconds=HOUR):
    """Every file's and directory's mtime ``seconds`` ago, deepest first: a run that ended a while ago."""
    when = time.time() - seconds
    for directory, _, names in sorted(os.walk(folder), key=lambda item: -len(item[0])):
        for name in names:
            os.utime(os.path.join(directory, name), (when, when))
        os.utime(directory, (when, when))


def finished_run(root, **kwargs):
    folder = write_execution(root, **kwargs)
    backdate(folder)
    return folder


def listed(monkeypatch):
    """The directories ``os.scandir`` is asked for from now on."""
    paths = []
    real = os.scandir

    def recording(path="."):
        paths.append(str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", recording)
    return paths


def the_execution():
    return Execution.objects.get()


def test_a_finished_run_still_for_the_stale_window_is_not_listed_again(root, monkeypatch):
    folder = finished_run(root)
    assert sync_trainings(root).line() == "indexed 1, unchanged 0, errors 0"
    assert the_execution().folder_stamp.count("|") == 2  # callbacks, callbacks/model_checkpoint
    before = the_execution().updated_at
    paths = listed(monkeypatch)

    assert sync_trainings(root).line() == "indexed 0, unchanged 1, errors 0"

    assert [path for path in paths if path.startswith(str(folder))] == []
    assert the_execution().updated_at == before


def test_a_run_just_written_or_still_going_is_listed_every_time(root, monkeypatch):
    fresh = write_execution(root)
    going = finished_run(root, name="06-39-51__10-04-2019")
    sync_trainings(root)
    assert the_stamp(fresh.name) == ""
    assert the_stamp(going.name) != ""
    # Resumed: a worker runs it again (its heartbeat vouches for it), stamped as it is from when it had ended.
    Execution.objects.filter(folder_name=going.name).update(status=Status.RUNNING, heartbeat_at=timezone.now())
    paths = listed(monkeypatch)

    assert sync_trainings(root).unchanged == 2

    assert str(fresh) in paths
    assert str(going) in paths


def the_stamp(name):
    return Execution.objects.get(folder_name=name).folder_stamp


def test_an_unchanged_run_indexed_before_stamps_is_stamped_without_being_read(root):
    finished_run(root)
    sync_trainings(root)
    Execution.objects.update(folder_stamp="")  # as the migration leaves every row
    before = the_execution().updated_at

    assert sync_trainings(root).line() == "indexed 0, unchanged 1, errors 0"

    execution = the_execution()
    assert execution.folder_stamp != ""
    assert execution.updated_at == before


def test_a_sidecar_written_after_the_run_ended_is_indexed(root):
    folder = finished_run(root)
    sync_trainings(root)
    sidecar.write(folder, sidecar.Sidecar(title="Best so far", tags=["keep"]), by="ana")

    assert sync_trainings(root).line() == "indexed 1, unchanged 0, errors 0"

    execution = the_execution()
    assert (execution.title, execution.tags) == ("Best so far", ["keep"])


def test_a_checkpoint_removed_by_hand_leaves_the_artifacts(root):
    folder = finished_run(root)
    sync_trainings(root)
    (folder / "callbacks" / "model_checkpoint" / SEED_CHECKPOINTS[0]).unlink()

    assert sync_trainings(root).indexed == 1

    paths = [artifact["path"] for artifact in the_execution().artifacts]
    assert f"callbacks/model_checkpoint/{SEED_CHECKPOINTS[0]}" not in paths
    assert f"callbacks/model_checkpoint/{SEED_CHECKPOINTS[1]}" in paths


def test_a_file_added_in_a_subfolder_whose_mtime_is_set_back_is_still_seen(root):
    folder = finished_run(root)
    sync_trainings(root)
    checkpoints = folder / "callbacks" / "model_checkpoint"
    stat = checkpoints.stat()
    (checkpoints / "weights.20-9.99.h5").write_bytes(b"\x89HDF more")
    os.utime(checkpoints, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as rsync -a does: its ctime still moves

    assert sync_trainings(root).indexed == 1

    assert "callbacks/model_checkpoint/weights.20-9.99.h5" in [a["path"] for a in the_execution().artifacts]


def test_a_folder_replaced_by_another_of_the_same_name_is_read(root):
    folder = finished_run(root)
    sync_trainings(root)
    other = finished_run(root, dataset="elsewhere")
    shutil.rmtree(folder)
    longer = json.loads(json.dumps(SEED_METRICS))
    longer["metrics"]["val_loss"].append(12.5)
    (other / "metrics.json").write_text(json.dumps(longer))
    backdate(other)
    os.rename(other, folder)

    report = sync_trainings(root)

    assert report.indexed == 1
    execution = Execution.objects.get(experiment__name="boston_housing")
    assert execution.history("val_loss")[-1] == 12.5


def test_a_file_changed_in_place_after_the_run_ended_takes_sync_full(root):
    folder = finished_run(root)
    sync_trainings(root)
    longer = json.loads(json.dumps(SEED_METRICS))
    longer["metrics"]["val_loss"].append(12.5)
    with open(folder / "metrics.json", "w") as metrics:  # in place: no rename, no directory changes
        metrics.write(json.dumps(longer))

    assert sync_trainings(root).line() == "indexed 0, unchanged 1, errors 0"  # the documented blind spot
    assert the_execution().history("val_loss")[-1] != 12.5

    call_command("sync_trainings", "--root", str(root), "--full", "--no-progress")

    assert the_execution().history("val_loss")[-1] == 12.5


def test_a_run_resumed_and_ended_again_is_read_when_its_worker_indexes_it(root):
    folder = finished_run(root)
    sync_trainings(root)
    with open(folder / "execution.log", "a") as log:  # in place, as the engine's log is written
        log.write("2019-04-08 07:00:00,000 - gymnosd - INFO - Trainer - Resumed\n")

    # What the worker does when a run ends: the folder is listed, stamped or not, and read since its log changed.
    assert sync_folder(folder).indexed == 1
    assert the_execution().folder_stamp == ""  # its log was just written: not stamped until it has been still
    assert sync_folder(folder).indexed == 0


def test_a_run_resumed_by_hand_loses_its_stamp_so_sync_lists_it_while_it_trains_again(root, monkeypatch):
    folder = finished_run(root)
    sync_trainings(root)
    execution = the_execution()
    assert execution.folder_stamp != ""
    Execution.objects.filter(pk=execution.pk).update(status=Status.FAILED)
    assert Execution.objects.resume_by_hand(execution.pk, execution.attempts, "job-attempt-2")

    assert the_execution().folder_stamp == ""
    paths = listed(monkeypatch)
    sync_trainings(root)
    assert str(folder) in paths  # listed again, not stat'ed: a log only appended to is seen
