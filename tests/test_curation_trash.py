"""Delete moves a run's folder to <root>/.trash/ (same path inside); restore puts it back byte for byte."""

import datetime as dt
import hashlib
import json
import os

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from audit.models import Entry
from experiments.curation import trash
from experiments.curation.edits import CurationError
from experiments.index.sync import sync_trainings
from experiments.models import Execution
from tests.folders import make_run, write_execution

pytestmark = pytest.mark.django_db

NAME = "06-16-31__08-04-2019"


def tree(folder):
    """Every file under ``folder`` with its bytes' hash, size and mtime: what restoring must keep."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            stat = path.stat()
            found[str(path.relative_to(folder))] = (hashlib.sha256(path.read_bytes()).hexdigest(), stat.st_size)
    return found


@pytest.fixture
def run(root, owner):
    return make_run(root, NAME, owner=owner)


def test_delete_moves_the_folder_into_the_trash_keeping_its_path_and_restore_brings_it_back_identical(root, run, owner):
    folder = root / "boston_housing" / "executions" / NAME
    (folder / "notes.bin").write_bytes(os.urandom(4096))
    before = tree(folder)

    size = trash.delete(run, actor=owner)

    trashed = root / ".trash" / "boston_housing" / "executions" / NAME
    assert not folder.exists()
    assert trashed.is_dir()
    assert tree(trashed) == before
    assert size == sum(size for _, size in before.values())
    run.refresh_from_db()
    assert (run.status, run.status_before_delete, run.deleted_by) == ("deleted", "succeeded", owner)
    assert run.deleted_at is not None
    manifest = json.loads((trashed.parent / (NAME + ".gymnos-trash.json")).read_text())
    assert manifest["deleted_by"] == "olivia"
    assert manifest["status_before_delete"] == "succeeded"

    trash.restore(run, actor=owner)

    assert folder.is_dir()
    assert tree(folder) == before
    assert not (root / ".trash" / "boston_housing").exists()  # emptied folders of the trash are removed
    run.refresh_from_db()
    assert (run.status, run.deleted_at, run.deleted_by, run.status_before_delete) == ("succeeded", None, None, "")


def test_sync_ignores_the_trash_and_leaves_a_deleted_run_deleted(root, run):
    trash.delete(run)
    report = sync_trainings(root)
    run.refresh_from_db()
    assert run.status == "deleted"
    assert report.missing == 0
    assert Execution.objects.count() == 1
    assert list(Execution.objects.visible()) == []


@pytest.mark.parametrize("status", ["queued", "running"])
def test_a_queued_or_running_run_cannot_be_deleted_and_its_folder_stays(root, run, status):
    Execution.objects.filter(pk=run.pk).update(status=status)
    with pytest.raises(CurationError, match=f"is {status}; cancel it before deleting it"):
        trash.delete(run)
    assert (root / "boston_housing" / "executions" / NAME).is_dir()
    assert not (root / ".trash").exists()
    assert Execution.objects.get(pk=run.pk).status == status


def test_a_missing_run_is_marked_deleted_and_restored_as_missing(root, run):
    (root / "boston_housing" / "executions" / NAME / "model.h5").unlink()
    for path in sorted((root / "boston_housing" / "executions" / NAME).rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    (root / "boston_housing" / "executions" / NAME).rmdir()
    sync_trainings(root)
    run.refresh_from_db()
    assert run.status == "missing"
    trash.delete(run)
    assert Execution.objects.get(pk=run.pk).status == "deleted"
    trash.restore(run)
    assert Execution.objects.get(pk=run.pk).status == "missing"


def test_restore_refuses_when_something_already_sits_at_the_original_path(root, run):
    trash.delete(run)
    squatter = root / "boston_housing" / "executions" / NAME
    squatter.mkdir(parents=True)
    (squatter / "other.txt").write_text("someone else's")
    with pytest.raises(CurationError, match=f"something already sits at {squatter}"):
        trash.restore(run)
    assert (squatter / "other.txt").read_text() == "someone else's"
    assert (root / ".trash" / "boston_housing" / "executions" / NAME / "metrics.json").is_file()
    assert Execution.objects.get(pk=run.pk).status == "deleted"


def test_a_run_already_deleted_cannot_be_deleted_again_nor_a_live_one_restored(root, run):
    trash.delete(run)
    with pytest.raises(CurationError, match="only runs that ended can be deleted"):
        trash.delete(run)
    trash.restore(run)
    with pytest.raises(CurationError, match="not in the trash"):
        trash.restore(run)


def _deleted(root, name, days_ago, owner=None):
    run = make_run(root, name, owner=owner)
    trash.delete(run)
    Execution.objects.filter(pk=run.pk).update(deleted_at=timezone.now() - dt.timedelta(days=days_ago))
    return run


def test_empty_trash_removes_only_what_was_deleted_longer_ago_than_asked(root, capsys):
    old = _deleted(root, "06-16-31__08-04-2019", days_ago=40)
    recent = _deleted(root, "06-39-51__10-04-2019", days_ago=3)
    old_size = Execution.objects.get(pk=old.pk).size_bytes

    call_command("empty_trash", "--older-than", "30")

    out = capsys.readouterr().out
    assert "removed boston_housing/06-16-31__08-04-2019" in out
    assert f"emptied the trash of 1 run deleted 30 or more days ago: {old_size:,} bytes" in out
    assert not Execution.objects.filter(pk=old.pk).exists()
    assert not (root / ".trash" / "boston_housing" / "executions" / "06-16-31__08-04-2019").exists()
    assert Execution.objects.get(pk=recent.pk).status == "deleted"
    assert (root / ".trash" / "boston_housing" / "executions" / "06-39-51__10-04-2019" / "model.h5").is_file()


def test_empty_trash_defaults_to_gymnos_trash_days(root, settings, capsys):
    settings.GYMNOS_TRASH_DAYS = 5
    _deleted(root, "06-16-31__08-04-2019", days_ago=6)
    _deleted(root, "06-39-51__10-04-2019", days_ago=4)
    call_command("empty_trash")
    assert "emptied the trash of 1 run deleted 5 or more days ago" in capsys.readouterr().out
    assert Execution.objects.filter(status="deleted").count() == 1


def test_empty_trash_with_zero_days_empties_everything_and_rejects_a_negative_count(root, capsys):
    _deleted(root, "06-16-31__08-04-2019", days_ago=0)
    call_command("empty_trash", "--older-than", "0")
    assert Execution.objects.count() == 0
    assert list((root / ".trash").iterdir()) == []
    with pytest.raises(CommandError, match="expected 0 or more days, got -1"):
        call_command("empty_trash", "--older-than", "-1")


def test_empty_trash_also_removes_old_trashed_folders_whose_rows_are_gone(root):
    """After the index was rebuilt, the trash still empties, by the date its manifest keeps."""
    old = write_execution(root / ".trash", name="01-00-00__01-01-2020")
    (old.parent / (old.name + ".gymnos-trash.json")).write_text(
        json.dumps({"deleted_at": (timezone.now() - dt.timedelta(days=90)).isoformat()})
    )
    undated = write_execution(root / ".trash", name="02-00-00__01-01-2020")
    report = trash.empty_trash(dt.timedelta(days=30))
    assert report.removed == ["boston_housing/01-00-00__01-01-2020"]
    assert not old.exists()
    assert undated.is_dir()


def test_a_trashed_folder_without_a_manifest_is_dated_when_first_found_and_goes_at_a_later_emptying(root):
    undated = write_execution(root / ".trash", name="02-00-00__01-01-2020")
    manifest = undated.parent / (undated.name + ".gymnos-trash.json")

    assert trash.empty_trash(dt.timedelta(0)).removed == []  # never in the call that found it
    assert undated.is_dir()
    assert json.loads(manifest.read_text())["found_without_manifest"] is True

    later = timezone.now() + dt.timedelta(days=31)
    assert trash.empty_trash(dt.timedelta(days=30), now=later).removed == ["boston_housing/02-00-00__01-01-2020"]
    assert not undated.exists()
    assert not manifest.exists()


def test_a_folder_moved_to_the_trash_whose_row_is_not_yet_marked_is_never_emptied(root, run):
    """``delete`` moves the folder first and marks the row after: emptying meanwhile must not take it."""
    trashed = root / ".trash" / "boston_housing" / "executions" / NAME
    trashed.parent.mkdir(parents=True)
    os.rename(root / "boston_housing" / "executions" / NAME, trashed)
    trash.empty_trash(dt.timedelta(0))
    trash.empty_trash(dt.timedelta(0), now=timezone.now() + dt.timedelta(days=1))
    assert trashed.is_dir()
    assert list(trash.orphans()) == []


def test_every_deletion_restore_and_removal_writes_one_audit_entry(root, owner):
    run = make_run(root, NAME)
    trash.delete(run, actor=owner)
    trash.restore(run, actor=owner)
    trash.delete(run, actor=owner)
    trash.empty_trash(dt.timedelta(0))
    assert list(Entry.objects.order_by("pk").values_list("action", "actor_name")) == [
        ("delete", "olivia"),
        ("restore", "olivia"),
        ("delete", "olivia"),
        ("empty_trash", ""),
    ]
    assert Entry.objects.filter(action="empty_trash").get().target == f"execution {run.pk} (boston_housing/{NAME})"


def test_a_run_that_never_had_a_folder_is_deleted_and_restored_by_its_row_alone(root, run):
    never = Execution.objects.create(experiment=run.experiment, status="failed", error="the queue was down")
    trash.delete(never)
    assert Execution.objects.get(pk=never.pk).status == "deleted"
    trash.restore(never)
    assert Execution.objects.get(pk=never.pk).status == "failed"
    assert not (root / ".trash").exists()
    assert (root / "boston_housing" / "executions" / NAME).is_dir()
