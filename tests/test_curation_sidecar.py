"""The sidecar (curation.json): edits live in the run's folder, and sync reads them back."""

import json
import os

import pytest
from django.db import connection

from audit.models import Entry
from experiments.curation import edits, sidecar
from experiments.index.sync import sync_trainings
from experiments.models import Execution, Experiment, MetricHistory
from tests.folders import make_run, write_execution
from tests.helpers import seed_config

pytestmark = pytest.mark.django_db


def drop_index():
    """What dropping the database leaves: no rows at all."""
    Entry.objects.all().delete()
    MetricHistory.objects.all().delete()
    Execution.objects.all().delete()


def test_notes_tags_title_and_archived_state_survive_dropping_the_index_and_syncing_again(root, owner):
    first = make_run(root, "06-16-31__08-04-2019")
    second = make_run(root, "06-39-51__10-04-2019")
    edits.edit(first, title="wider layers", notes="Lower *val_loss*.\n\n- one\n- two", tags=["baseline", "wide"])
    edits.set_archived(second, True)
    edits.edit(second, tags=[])

    drop_index()
    sync_trainings(root)

    first = Execution.objects.get(folder_name="06-16-31__08-04-2019")
    second = Execution.objects.get(folder_name="06-39-51__10-04-2019")
    assert (first.title, first.notes, first.tags, first.archived) == (
        "wider layers",
        "Lower *val_loss*.\n\n- one\n- two",
        ["baseline", "wide"],
        False,
    )
    assert (second.title, second.tags, second.archived) == ("Boston Housing", [], True)
    assert list(Execution.objects.visible()) == [first]


def test_an_archived_experiment_is_archived_again_when_the_index_is_rebuilt(root, owner):
    make_run(root, "06-16-31__08-04-2019")
    make_run(root, "06-39-51__10-04-2019")
    make_run(root, "07-00-00__11-04-2019", dataset="mnist")
    edits.set_experiment_archived(Experiment.objects.get(name="boston_housing"), True)
    edits.set_archived(Execution.objects.get(experiment__name="mnist"), True)  # its only run, on its own

    drop_index()
    Experiment.objects.all().delete()
    sync_trainings(root)

    archived = dict(Experiment.objects.values_list("name", "archived"))
    assert archived == {"boston_housing": True, "mnist": False}
    assert list(Execution.objects.visible()) == []
    edits.set_experiment_archived(Experiment.objects.get(name="boston_housing"), False)
    assert Execution.objects.visible().count() == 2  # unarchiving still brings its runs back


def test_an_experiment_one_of_whose_runs_was_unarchived_stays_unarchived_after_a_rebuild(root, owner):
    make_run(root, "06-16-31__08-04-2019")
    kept = make_run(root, "06-39-51__10-04-2019")
    edits.set_experiment_archived(Experiment.objects.get(), True)
    edits.set_archived(kept, False)

    drop_index()
    Experiment.objects.all().delete()
    sync_trainings(root)

    assert Experiment.objects.get().archived is False
    assert [run.folder_name for run in Execution.objects.visible()] == ["06-39-51__10-04-2019"]


def test_the_sidecar_is_a_small_json_file_beside_the_seed_files(root, owner):
    run = make_run(root, "06-16-31__08-04-2019")
    edits.edit(run, notes="hello", actor=owner)
    document = json.loads((root / "boston_housing/executions/06-16-31__08-04-2019/curation.json").read_text())
    assert document["notes"] == "hello"
    assert document["archived"] is False
    assert document["updated_by"] == "olivia"
    assert "tags" not in document
    assert "title" not in document
    leftovers = [name for name in os.listdir(run.folder_path) if name.startswith(".curation")]
    assert leftovers == []  # the temporary file was renamed into place


def test_without_an_edit_the_configs_tags_and_name_stand_and_once_edited_the_sidecars_win(root):
    config = seed_config()
    config["experiment"]["tags"] = ["from-config"]
    write_execution(root, config=config)
    sync_trainings(root)
    run = Execution.objects.get()
    assert (run.title, run.tags) == ("Boston Housing", ["from-config"])

    edits.edit(run, tags=["from-config", "edited"])
    config["experiment"]["tags"] = ["changed-in-config"]  # the config is rewritten afterwards
    (root / "boston_housing/executions/06-16-31__08-04-2019/training_config.json").write_text(json.dumps(config))
    sync_trainings(root)
    run.refresh_from_db()
    assert run.tags == ["from-config", "edited"]


def test_an_empty_title_gives_back_the_configs_name(root):
    run = make_run(root, "06-16-31__08-04-2019")
    edits.edit(run, title="mine")
    edits.edit(run, title="")
    run.refresh_from_db()
    assert run.title == "Boston Housing"
    drop_index()
    sync_trainings(root)
    assert Execution.objects.get().title == "Boston Housing"


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"{not json", "is not valid JSON"),
        (b'["a list"]', "expected a JSON object, got list"),
        (b'{"tags": "baseline"}', "tags: expected a list of strings"),
        (b'{"archived": "yes"}', 'archived: expected true or false, got "yes"'),
        (b"[" * 100 + b"]" * 100, "is nested 100 deep"),
        (json.dumps({"notes": "x" * 60_000}).encode(), "the notes are 60,000 characters; at most 50,000"),
    ],
)
def test_a_bad_sidecar_is_reported_on_the_run_and_not_indexed(root, content, problem):
    folder = write_execution(root)
    (folder / "curation.json").write_bytes(content)
    report = sync_trainings(root)
    run = Execution.objects.get()
    assert problem in run.error
    assert "curation.json" in run.error
    assert report.errors == 1
    assert (run.notes, run.archived, run.title) == ("", False, "Boston Housing")


def test_a_sidecar_bigger_than_the_limit_is_not_read_whole(root):
    folder = write_execution(root)
    (folder / "curation.json").write_bytes(b'{"notes": "' + b"x" * (sidecar.MAX_BYTES + 10) + b'"}')
    sync_trainings(root)
    assert "curation.json: is 262,167 bytes; at most 262,144 are read; not indexed" in Execution.objects.get().error


def test_sync_indexes_each_runs_size_and_its_checkpoints_apart(root):
    folder = write_execution(root)
    (folder / "callbacks/model_checkpoint/weights.20-15.00.keras").write_bytes(b"k" * 1000)
    sync_trainings(root)
    run = Execution.objects.get()
    on_disk = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    checkpoints = sum(path.stat().st_size for path in (folder / "callbacks").rglob("*") if path.is_file())
    assert run.size_bytes == on_disk
    assert run.checkpoint_bytes == checkpoints == 3 * 17 + 1000


def test_editing_a_queued_run_without_a_folder_is_refused(root, owner):
    experiment = make_run(root, "06-16-31__08-04-2019").experiment
    queued = Execution.objects.create(experiment=experiment, status="queued")
    with pytest.raises(edits.CurationError, match="has no folder yet"):
        edits.edit(queued, notes="too early")
    queued.refresh_from_db()
    assert queued.notes == ""
    assert Entry.objects.count() == 0


def test_two_edits_one_after_the_other_both_stay(root):
    run = make_run(root, "06-16-31__08-04-2019")
    edits.edit(Execution.objects.get(pk=run.pk), notes="first")
    edits.edit(Execution.objects.get(pk=run.pk), tags=["second"])
    assert sidecar.read(run.folder_path).notes == "first"
    assert sidecar.read(run.folder_path).tags == ["second"]


@pytest.mark.parametrize(
    "tags, message",
    [
        ([""], "a tag cannot be empty"),
        (["a,b"], "has a comma"),
        (["x" * 65], "at most 64"),
        ([f"t{i}" for i in range(51)], "at most 50"),
        (["line\nbreak"], "control character"),
    ],
)
def test_tags_are_bounded(tags, message):
    with pytest.raises(sidecar.SidecarError, match=message):
        sidecar.clean_tags(tags)


def test_the_database_engine_under_test(root):
    # Both engines store the tags list and notes text the same way (run on SQLite and PostgreSQL).
    run = make_run(root, "06-16-31__08-04-2019")
    edits.edit(run, notes="naïve ✓ — üñí", tags=["ünï", "b"])
    run = Execution.objects.get(pk=run.pk)
    assert run.notes == "naïve ✓ — üñí"
    assert run.tags == ["ünï", "b"]
    assert connection.vendor in {"sqlite", "postgresql"}
