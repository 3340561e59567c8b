"""``manage.py evaluate FOLDER``: the report for a run made before it existed, from its model.h5 and config."""

import io
import json
import shutil

import pytest
from django.core.management import call_command

from experiments.index.sync import sync_trainings
from experiments.models import Execution
from experiments.pipeline import load_config, run_experiment
from tests.helpers import tiny
from tests.test_evaluation_views import IRIS

pytestmark = [pytest.mark.django_db, pytest.mark.training]


def evaluate(*folders, cache_dir, root):
    out, err = io.StringIO(), io.StringIO()
    code: str | int | None = 0
    try:
        call_command(
            "evaluate", *map(str, folders), cache_dir=str(cache_dir), trainings_root=str(root), stdout=out, stderr=err
        )
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def old_run(root, tmp_path):
    """A trained iris run whose folder is as a run made before the report existed: no evaluation.json."""
    result = run_experiment(load_config(IRIS), trainings_root=root, cache_dir=tmp_path / "cache")
    assert result.succeeded, result.error
    assert result.path is not None
    written = json.loads((result.path / "evaluation.json").read_text())
    (result.path / "evaluation.json").unlink()
    sync_trainings(root)
    assert Execution.objects.get().evaluation == {}
    return result.path, written


def test_it_writes_the_report_the_run_would_have_written_and_indexes_it(old_run, root, tmp_path):
    folder, written = old_run
    log_before = (folder / "execution.log").read_bytes()
    code, out, _ = evaluate(folder, cache_dir=tmp_path / "cache", root=root)
    assert code == 0
    report = json.loads((folder / "evaluation.json").read_text())
    report.pop("seconds"), written.pop("seconds")
    assert report == written  # the same split rebuilt from the seed, the same predictions, the same figures
    assert f"{folder / 'evaluation.json'}: classification on the test split (30 samples): accuracy " in out
    assert Execution.objects.get().evaluation == pytest.approx(written["headline"])
    assert (folder / "execution.log").read_bytes() == log_before  # the seed's files are left as they are


def test_links_planted_where_the_report_is_written_are_replaced_never_written_through(old_run, root, tmp_path):
    """The old writer opened ``.evaluation.json.tmp`` with "w": a link planted there overwrote model.h5."""
    folder, _ = old_run
    model = (folder / "model.h5").read_bytes()
    precious = tmp_path / "precious.json"
    precious.write_bytes(b"keep me")
    (folder / ".evaluation.json.tmp").symlink_to(folder / "model.h5")
    (folder / "evaluation.json").symlink_to(precious)

    code, _, err = evaluate(folder, cache_dir=tmp_path / "cache", root=root)

    assert code == 0, err
    assert (folder / "model.h5").read_bytes() == model
    assert precious.read_bytes() == b"keep me"
    assert not (folder / "evaluation.json").is_symlink()
    assert json.loads((folder / "evaluation.json").read_text())["task"] == "classification"


def test_a_regression_run_from_another_root_is_evaluated_but_not_indexed(root, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    result = run_experiment(load_config(tiny(epochs=2)), trainings_root=elsewhere, cache_dir=tmp_path / "cache")
    assert result.path is not None
    (result.path / "evaluation.json").unlink()
    code, out, err = evaluate(result.path, cache_dir=tmp_path / "cache", root=root)
    assert code == 0
    assert "regression on the test split (101 samples): r2 " in out
    assert "is not under the trainings root" in err
    assert not Execution.objects.exists()
    assert json.loads((result.path / "evaluation.json").read_text())["regression"]["points"]["total"] == 101


def test_a_folder_without_model_h5_is_exit_1_saying_why(old_run, root, tmp_path):
    folder, _ = old_run
    (folder / "model.h5").unlink()
    code, _, err = evaluate(folder, cache_dir=tmp_path / "cache", root=root)
    assert code == 1
    assert "has no model.h5 (the run did not finish training, so there is no model)" in err
    assert not (folder / "evaluation.json").exists()


def test_a_path_that_is_not_a_run_is_exit_1(root, tmp_path):
    code, _, err = evaluate(tmp_path / "nowhere", cache_dir=tmp_path / "cache", root=root)
    assert code == 1
    assert "is not a folder; expected an execution folder" in err


def test_a_config_that_no_longer_validates_is_exit_2_and_the_other_folders_still_run(old_run, root, tmp_path):
    folder, _ = old_run
    broken = folder.parent / "broken"
    shutil.copytree(folder, broken)
    config = json.loads((broken / "training_config.json").read_text())
    config["training"]["epoch"] = 3
    (broken / "training_config.json").write_text(json.dumps(config))
    code, out, err = evaluate(broken, folder, cache_dir=tmp_path / "cache", root=root)
    assert code == 2
    assert "training.epoch: unknown key; did you mean 'epochs'?" in err
    assert (folder / "evaluation.json").is_file()
    assert not (broken / "evaluation.json").exists()
