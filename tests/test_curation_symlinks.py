"""No curation action follows a symbolic link (experiments/pipeline/fileops.py does every one of them).

Links are planted at every level (a file, a run folder, an experiment folder, ``.trash`` and its
folders), pointing inside the run, to another run, and out of the trainings root. Each test asserts
what a user would notice: the link's target keeps every byte, the action either worked on the link
itself or refused saying which path is a link, and nothing else was lost.
"""

import datetime as dt
import hashlib
import json
import os
import re
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from experiments.curation import edits, trash
from experiments.curation.edits import CurationError
from experiments.index.sync import sync_trainings
from experiments.models import Execution
from tests.folders import login, make_run, write_execution
from tests.test_curation_views import user_with

pytestmark = pytest.mark.django_db

A, B = "06-16-31__08-04-2019", "06-39-51__10-04-2019"
REFUSED = "is a symbolic link; Gymnos never follows links when it deletes or moves files"
OLD = dt.timedelta(days=90)


def snapshot(path):
    """What is at ``path``, links not followed: each file's hash, each link's target, each folder."""
    if path.is_symlink():
        return {".": ("link", os.readlink(path))}
    if path.is_file():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest()}
    found: dict[str, Any] = {}
    for directory, folders, files in os.walk(path):
        for name in folders + files:
            entry = os.path.join(directory, name)
            key = os.path.relpath(entry, path)
            if os.path.islink(entry):
                found[key] = ("link", os.readlink(entry))
            elif os.path.isfile(entry):
                found[key] = hashlib.sha256(open(entry, "rb").read()).hexdigest()
            else:
                found[key] = "folder"
    return found


def run_folder(root, name=A, experiment="boston_housing"):
    return root / experiment / "executions" / name


def trashed(root, name=A, experiment="boston_housing"):
    return root / ".trash" / experiment / "executions" / name


@pytest.fixture
def run(root):
    return make_run(root, A)


@pytest.fixture
def other(root):
    """Another run, in another experiment, that links may point to."""
    return make_run(root, B, dataset="iris")


@pytest.fixture
def outside(tmp_path):
    """A folder out of the trainings root, with a file worth keeping."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "precious.h5").write_bytes(os.urandom(2048))
    return folder


def targets(root, outside):
    """Where a planted link may point: another run's folder, another experiment's, a folder out of the root."""
    return {
        "another run": run_folder(root, B, "iris"),
        "another experiment": root / "iris",
        "outside the root": outside,
    }


def replace_with_link(path, target):
    """Move what is at ``path`` away (kept, so nothing is lost by the test itself) and put a link there."""
    path.rename(path.with_name(path.name + ".moved-away"))
    path.symlink_to(target, target_is_directory=True)


# --- delete to the trash ---------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["another run", "outside the root"])
def test_delete_refuses_a_run_folder_that_is_a_link_and_leaves_the_link_and_its_target(
    root, run, other, outside, where
):
    target = targets(root, outside)[where]
    before = snapshot(target)
    folder = run_folder(root)
    replace_with_link(folder, target)

    with pytest.raises(CurationError, match=re.escape(f"{folder} {REFUSED}")):
        trash.delete(run)

    assert folder.is_symlink()
    assert snapshot(target) == before
    assert not trashed(root).exists()
    assert Execution.objects.get(pk=run.pk).status == "succeeded"


def test_deleting_a_run_of_an_experiment_folder_that_links_to_another_refuses_and_emptying_loses_nothing(root, run):
    """The issue's repro: ``root/alias`` links to an experiment; deleting an alias run moved the real folder."""
    (root / "alias").symlink_to(root / "boston_housing", target_is_directory=True)
    sync_trainings(root)
    alias_run = Execution.objects.get(experiment__name="alias", folder_name=A)
    before = snapshot(root / "boston_housing")

    with pytest.raises(CurationError, match=re.escape(f"{root / 'alias'} {REFUSED}")):
        trash.delete(alias_run)
    trash.empty_trash(dt.timedelta(0))

    assert snapshot(root / "boston_housing") == before
    assert Execution.objects.get(pk=alias_run.pk).status == "succeeded"


@pytest.mark.parametrize("level", [".trash", ".trash/boston_housing", ".trash/boston_housing/executions"])
@pytest.mark.parametrize("where", ["another experiment", "outside the root"])
def test_delete_refuses_when_the_trash_or_a_folder_of_it_is_a_link(root, run, other, outside, level, where):
    target = targets(root, outside)[where]
    before = snapshot(target)
    link = root / level
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target, target_is_directory=True)

    with pytest.raises(CurationError, match=re.escape(f"{link} {REFUSED}")):
        trash.delete(run)

    assert run_folder(root).is_dir()
    assert snapshot(target) == before
    assert Execution.objects.get(pk=run.pk).status == "succeeded"


def test_links_inside_a_run_go_to_the_trash_and_back_as_links_and_emptying_removes_only_the_links(
    root, run, other, outside
):
    folder = run_folder(root)
    (folder / "model.h5").unlink()
    (folder / "model.h5").symlink_to(run_folder(root, B, "iris") / "model.h5")  # to another run
    (folder / "best.h5").symlink_to(folder / "callbacks" / "model_checkpoint" / "weights.05-27.07.h5")  # inside
    (folder / "data").symlink_to(outside, target_is_directory=True)  # out of the root
    linked = {"other": snapshot(run_folder(root, B, "iris")), "outside": snapshot(outside)}
    before = snapshot(folder)

    trash.delete(run)
    assert snapshot(trashed(root)) == before
    trash.restore(run)
    assert snapshot(folder) == before
    trash.delete(run)
    report = trash.empty_trash(dt.timedelta(0))

    assert report.removed == [f"boston_housing/{A}"]
    assert report.problems == []
    assert not trashed(root).exists()
    assert {"other": snapshot(run_folder(root, B, "iris")), "outside": snapshot(outside)} == linked


# --- restore ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["another run", "outside the root"])
def test_restore_refuses_a_trashed_folder_that_became_a_link(root, run, other, outside, where):
    target = targets(root, outside)[where]
    before = snapshot(target)
    trash.delete(run)
    replace_with_link(trashed(root), target)

    with pytest.raises(CurationError, match=re.escape(f"{trashed(root)} {REFUSED}")):
        trash.restore(run)

    assert not os.path.lexists(run_folder(root))
    assert snapshot(target) == before
    assert Execution.objects.get(pk=run.pk).status == "deleted"


@pytest.mark.parametrize("where", ["another experiment", "outside the root"])
def test_restore_refuses_to_move_a_run_back_through_an_experiment_folder_that_became_a_link(
    root, run, other, outside, where
):
    target = targets(root, outside)[where]
    trash.delete(run)
    before = snapshot(target)
    replace_with_link(root / "boston_housing", target)

    with pytest.raises(CurationError, match=re.escape(f"{root / 'boston_housing'} {REFUSED}")):
        trash.restore(run)

    assert snapshot(target) == before
    assert trashed(root).is_dir()
    assert Execution.objects.get(pk=run.pk).status == "deleted"


# --- empty the trash -------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["another run", "outside the root"])
def test_emptying_removes_a_trashed_folder_that_is_a_link_as_a_link(root, run, other, outside, where):
    target = targets(root, outside)[where]
    before = snapshot(target)
    trash.delete(run)
    replace_with_link(trashed(root), target)

    report = trash.empty_trash(dt.timedelta(0))

    assert report.removed == [f"boston_housing/{A}"]
    assert not os.path.lexists(trashed(root))
    assert snapshot(target) == before


def plant_old_trash(folder):
    """``folder`` made to look like a trash: a run deleted long ago, with its manifest."""
    run = write_execution(folder, name="01-00-00__01-01-2020")
    when = (timezone.now() - OLD).isoformat()
    (run.parent / (run.name + trash.MANIFEST_SUFFIX)).write_text(json.dumps({"deleted_at": when}))
    return folder


def deleted_long_ago(root, name=B):
    run = make_run(root, name)
    trash.delete(run)
    Execution.objects.filter(pk=run.pk).update(deleted_at=timezone.now() - OLD)
    return run


@pytest.mark.parametrize(
    "level, points_to", [(".trash/evil", "boston_housing"), (".trash/iris/executions", "boston_housing/executions")]
)
def test_links_planted_in_the_trash_are_reported_one_by_one_and_the_rest_is_emptied(
    root, run, tmp_path, level, points_to
):
    deleted_long_ago(root)
    planted = plant_old_trash(tmp_path / "planted")
    before = snapshot(planted)
    link = root / level
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(planted / points_to, target_is_directory=True)

    report = trash.empty_trash(dt.timedelta(days=30))

    assert report.removed == [f"boston_housing/{B}"]
    assert report.problems == [f"{link} {REFUSED}; it is left as it is"]
    assert snapshot(planted) == before
    assert link.is_symlink()
    assert run_folder(root).is_dir()


def test_a_trash_that_is_a_link_is_reported_and_nothing_it_points_to_is_removed(root, run, tmp_path):
    old = deleted_long_ago(root)
    planted = plant_old_trash(tmp_path / "planted")
    before = snapshot(planted)
    os.rename(root / ".trash", tmp_path / "the-real-trash")
    (root / ".trash").symlink_to(planted, target_is_directory=True)

    report = trash.empty_trash(dt.timedelta(days=30))

    assert report.removed == []
    assert report.problems == [
        f"boston_housing/{B}: could not remove it: {root / '.trash'} {REFUSED}",
        f"{root / '.trash'} {REFUSED}; it is left as it is",
    ]
    assert snapshot(planted) == before
    assert Execution.objects.get(pk=old.pk).status == "deleted"


def test_the_trash_page_reports_a_planted_link_instead_of_answering_500(root, run, outside):
    plant_old_trash(outside)
    (root / ".trash").mkdir()
    (root / ".trash" / "evil").symlink_to(outside / "boston_housing", target_is_directory=True)
    before = snapshot(outside)
    client = login(user_with("carla", "delete_execution"))

    response = client.post(reverse("experiments:empty-trash"), {"older_than": 0}, follow=True)

    assert response.status_code == 200
    assert f"{root / '.trash' / 'evil'} {REFUSED}" in response.content.decode()
    assert snapshot(outside) == before


def test_empty_trash_prints_a_line_per_planted_link_and_exits_1_without_a_traceback(root, run, outside, capsys):
    plant_old_trash(outside)
    (root / ".trash").mkdir()
    (root / ".trash" / "evil").symlink_to(outside / "boston_housing", target_is_directory=True)
    before = snapshot(outside)

    with pytest.raises(CommandError, match="1 could not be removed") as caught:
        call_command("empty_trash", "--older-than", "0")

    assert caught.value.returncode == 1
    assert f"{root / '.trash' / 'evil'} {REFUSED}; it is left as it is" in capsys.readouterr().err
    assert snapshot(outside) == before


def test_a_manifest_that_is_a_link_is_replaced_when_dated_not_written_through(root, other):
    """Dating a trashed folder found without a manifest writes the manifest: never into a link's target."""
    undated = write_execution(root / ".trash", name="02-00-00__01-01-2020")
    model = run_folder(root, B, "iris") / "model.h5"
    before = model.read_bytes()
    manifest = undated.parent / (undated.name + trash.MANIFEST_SUFFIX)
    manifest.symlink_to(model)

    trash.empty_trash(dt.timedelta(days=30))

    assert model.read_bytes() == before
    assert not manifest.is_symlink()
    assert json.loads(manifest.read_text())["found_without_manifest"] is True


# --- prune checkpoints -----------------------------------------------------------------------------

CHECKPOINTS = "callbacks/model_checkpoint"


def test_prune_removes_a_checkpoint_that_links_to_the_runs_model_not_the_model(root, run, capsys):
    """The issue's repro: a checkpoint name linked to model.h5 and pruning deleted model.h5."""
    folder = run_folder(root)
    model = (folder / "model.h5").read_bytes()
    checkpoint = folder / CHECKPOINTS / "weights.05-27.07.h5"
    checkpoint.unlink()
    checkpoint.symlink_to(folder / "model.h5")

    call_command("prune_checkpoints", "--keep-best", "1")

    assert (folder / "model.h5").read_bytes() == model
    assert not os.path.lexists(checkpoint)
    assert (folder / CHECKPOINTS / "weights.15-16.03.h5").is_file()
    assert f"removed {CHECKPOINTS}/weights.05-27.07.h5 (0 bytes)" in capsys.readouterr().out  # a link frees nothing


@pytest.mark.parametrize("where", ["another run", "outside the root"])
def test_prune_leaves_a_checkpoint_that_links_out_of_the_run_and_what_it_points_to(root, run, other, outside, where):
    target = {
        "another run": run_folder(root, B, "iris") / CHECKPOINTS / "weights.05-27.07.h5",
        "outside the root": outside / "precious.h5",
    }[where]
    before = snapshot(target.parent)
    checkpoint = run_folder(root) / CHECKPOINTS / "weights.05-27.07.h5"
    checkpoint.unlink()
    checkpoint.symlink_to(target)

    call_command("prune_checkpoints", "--experiment", "boston_housing", "--keep-best", "1")

    assert checkpoint.is_symlink()
    assert snapshot(target.parent) == before
    assert sorted(path.name for path in checkpoint.parent.iterdir()) == ["weights.05-27.07.h5", "weights.15-16.03.h5"]


@pytest.mark.parametrize("level", ["run folder", "experiment folder"])
def test_prune_refuses_a_run_behind_a_link_and_removes_nothing_of_what_it_points_to(root, run, other, level, capsys):
    if level == "run folder":
        replace_with_link(run_folder(root), run_folder(root, B, "iris"))
        link, experiment = run_folder(root), "boston_housing"
    else:
        (root / "alias").symlink_to(root / "iris", target_is_directory=True)
        sync_trainings(root)
        link, experiment = root / "alias", "alias"
    before = snapshot(root / "iris")

    call_command("prune_checkpoints", "--experiment", experiment, "--keep-best", "1")

    assert snapshot(root / "iris") == before
    assert f"nothing removed: {link} {REFUSED}" in capsys.readouterr().out


# --- the sidecar writer ----------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["run folder", "experiment folder"])
def test_an_edit_of_a_run_behind_a_link_is_refused_and_the_linked_run_keeps_its_notes(root, run, other, level):
    edits.edit(other, notes="their notes")
    theirs = run_folder(root, B, "iris")
    if level == "run folder":
        replace_with_link(run_folder(root), theirs)
        mine, link = run, run_folder(root)
    else:
        (root / "alias").symlink_to(root / "iris", target_is_directory=True)
        sync_trainings(root)
        mine, link = Execution.objects.get(experiment__name="alias"), root / "alias"
    before = snapshot(theirs)

    with pytest.raises(CurationError, match=re.escape(f"{link} {REFUSED}")):
        edits.edit(mine, notes="mine")

    assert snapshot(theirs) == before
    assert json.loads((theirs / "curation.json").read_text())["notes"] == "their notes"


@pytest.mark.parametrize("where", ["inside the run", "another run", "outside the root"])
def test_a_sidecar_that_is_a_link_is_never_written_through(root, run, other, outside, where):
    target = {
        "inside the run": run_folder(root) / "model.h5",
        "another run": run_folder(root, B, "iris") / "model.h5",
        "outside the root": outside / "precious.h5",
    }[where]
    before = target.read_bytes()
    (run_folder(root) / "curation.json").symlink_to(target)

    try:
        edits.edit(run, notes="mine")
    except CurationError as exc:
        assert "curation.json" in str(exc)  # refused, saying which file; or written as a file of its own

    assert target.read_bytes() == before
