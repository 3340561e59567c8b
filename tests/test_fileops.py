"""experiments/pipeline/fileops.py: the one module that deletes, moves and replaces files, never through a link.

The curation actions built on it are tested in test_curation_symlinks.py; here, the module itself
and the engine's writers (write_json, the dataset cache), without Django.
"""

import hashlib
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from experiments.pipeline import fileops
from experiments.pipeline.datasets import HDFManager
from experiments.pipeline.execution import write_json

REFUSED = "is a symbolic link; Gymnos never follows links when it deletes or moves files"


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def root(tmp_path):
    """A root holding a run (``exp/executions/run``) and another run; ``outside`` holds a precious file."""
    root = tmp_path / "root"
    for name in ("run", "other"):
        folder = root / "exp" / "executions" / name
        folder.mkdir(parents=True)
        (folder / "model.h5").write_bytes(os.urandom(1024))
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "precious.h5").write_bytes(os.urandom(1024))
    return root


def outside(root):
    return root.parent / "outside"


FILE = "exp/executions/run/model.h5"
LEVELS = ["exp", "exp/executions", "exp/executions/run"]  # each folder on the way to it


def link_level(root, level, target):
    """Replace the folder ``level`` by a link to ``target`` (its content moved beside the root, kept)."""
    path = root / level
    shutil.move(path, root.parent / ("moved-" + level.replace("/", "-")))
    path.symlink_to(target, target_is_directory=True)
    return path


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize(
    "operation",
    [
        lambda root: fileops.remove(root, FILE),
        lambda root: fileops.write(root, FILE, b"overwritten"),
        lambda root: fileops.move(root, FILE, "exp/executions/run/moved.h5"),
        lambda root: fileops.size(root, FILE),
    ],
    ids=["remove", "write", "move", "size"],
)
def test_every_operation_refuses_a_folder_on_the_way_that_is_a_link_naming_it(root, level, operation):
    """``level`` links to a copy out of the root that holds a model.h5 at the same place: it must stay."""
    copy = outside(root) / (level.replace("/", "-") + "-copy")
    precious = copy / FILE.removeprefix(level + "/")
    precious.parent.mkdir(parents=True)
    precious.write_bytes(b"keep me")
    link = link_level(root, level, copy)

    with pytest.raises(fileops.Refused, match=re.escape(f"{link} {REFUSED}")):
        operation(root)

    assert precious.read_bytes() == b"keep me"
    assert sorted(os.listdir(precious.parent)) == ["model.h5"]
    assert link.is_symlink()


def file_at(root, where):
    """A file worth keeping that a planted link points to."""
    return {
        "inside the run": root / "exp/executions/run/model.h5",
        "another run": root / "exp/executions/other/model.h5",
        "outside the root": outside(root) / "precious.h5",
    }[where]


@pytest.mark.parametrize("where", ["inside the run", "another run", "outside the root"])
def test_remove_takes_a_link_away_and_leaves_its_target(root, where):
    target = file_at(root, where)
    before = digest(target)
    link = root / "exp/executions/run/checkpoint.h5"
    link.symlink_to(target)

    assert fileops.remove(root, link) == 0  # a link frees nothing

    assert not os.path.lexists(link)
    assert digest(target) == before


def test_removing_a_folder_removes_links_inside_it_as_links(root):
    run = root / "exp/executions/run"
    (run / "to-other").symlink_to(root / "exp/executions/other", target_is_directory=True)
    (run / "to-outside").symlink_to(outside(root), target_is_directory=True)
    (run / "to-file").symlink_to(outside(root) / "precious.h5")
    before = {path: digest(path) for path in (root / "exp/executions/other/model.h5", outside(root) / "precious.h5")}

    assert fileops.remove(root, run) == 1024  # model.h5's bytes; the links count for nothing

    assert not run.exists()
    assert {path: digest(path) for path in before} == before


@pytest.mark.parametrize("where", ["inside the run", "another run", "outside the root"])
def test_write_replaces_a_link_with_a_file_and_never_writes_through_it(root, where):
    target = file_at(root, where)
    before = digest(target)
    path = root / "exp/executions/run/curation.json"
    path.symlink_to(target)

    fileops.write(root, path, b'{"notes": "mine"}\n')

    assert not path.is_symlink()
    assert path.read_bytes() == b'{"notes": "mine"}\n'
    assert digest(target) == before
    assert sorted(os.listdir(path.parent)) == ["curation.json", "model.h5"]  # no temporary file left


def test_move_refuses_a_link_as_its_source_and_moves_a_folder_with_links_inside_as_links(root):
    run = root / "exp/executions/run"
    (run / "to-outside").symlink_to(outside(root), target_is_directory=True)
    alias = root / "exp/executions/alias"
    alias.symlink_to(root / "exp/executions/other", target_is_directory=True)

    with pytest.raises(fileops.Refused, match=re.escape(f"{alias} {REFUSED}")):
        fileops.move(root, alias, ".trash/exp/executions/alias")
    fileops.move(root, run, ".trash/exp/executions/run")

    assert os.readlink(root / ".trash/exp/executions/run/to-outside") == str(outside(root))
    assert alias.is_symlink()
    assert (root / "exp/executions/other/model.h5").is_file()
    with pytest.raises(FileExistsError):
        fileops.move(root, root / "exp/executions/other", root / ".trash/exp/executions/run")


@pytest.mark.parametrize("path", ["../outside/precious.h5", "exp/../../outside/precious.h5", "exp//run", "/etc/hosts"])
def test_a_path_that_is_not_plainly_inside_the_root_is_refused(root, path):
    with pytest.raises(fileops.Refused, match="inside"):
        fileops.remove(root, path)
    assert (outside(root) / "precious.h5").is_file()


def test_remove_empty_stops_at_a_folder_with_something_in_it_and_never_at_a_link(root):
    (root / ".trash/exp/executions").mkdir(parents=True)
    fileops.remove_empty(root, root / ".trash/exp/executions", root / ".trash")
    assert (root / ".trash").is_dir()
    assert not (root / ".trash/exp").exists()

    (root / ".trash/exp").symlink_to(root / "exp", target_is_directory=True)
    fileops.remove_empty(root, root / ".trash/exp/executions/run", root / ".trash")
    assert (root / "exp/executions/run/model.h5").is_file()


# --- the engine's writers --------------------------------------------------------------------------


def test_write_json_never_writes_through_a_link_planted_at_its_temporary_name_or_its_own(root):
    """The old writer opened ``.metrics.json.tmp`` with "w", following a link planted there."""
    run = root / "exp/executions/run"
    model, precious = run / "model.h5", outside(root) / "precious.h5"
    before = {path: digest(path) for path in (model, precious)}
    (run / ".metrics.json.tmp").symlink_to(model)
    (run / "metrics.json").symlink_to(precious)

    write_json(run / "metrics.json", {"metrics": {"loss": [1.0]}})

    assert {path: digest(path) for path in before} == before
    assert not (run / "metrics.json").is_symlink()
    assert '"loss"' in (run / "metrics.json").read_text()


def test_the_dataset_cache_replaces_a_link_with_the_file_and_leaves_its_target(tmp_path):
    precious = tmp_path / "precious.h5"
    precious.write_bytes(b"keep me")
    cache = HDFManager(tmp_path / "cache" / "datasets" / "Iris.h5")
    cache.path.parent.mkdir(parents=True)
    cache.path.symlink_to(precious)

    cache.save(np.zeros((3, 2)), np.ones(3))

    assert precious.read_bytes() == b"keep me"
    assert not cache.path.is_symlink()
    X, y = cache.load()
    assert X.shape == (3, 2)
    assert list(os.listdir(cache.path.parent)) == ["Iris.h5"]


# --- across filesystems ----------------------------------------------------------------------------


@pytest.fixture
def mounted(root):
    """``root/exp`` made a separate filesystem (tmpfs), so a move into ``root/.trash`` is EXDEV."""
    saved = root.parent / "exp-content"
    shutil.move(root / "exp", saved)
    (root / "exp").mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "none", str(root / "exp")]).returncode:
        pytest.skip("mounting a tmpfs needs root; the cross-filesystem move is not tested here")
    try:
        shutil.copytree(saved, root / "exp", symlinks=True, dirs_exist_ok=True)
        yield root
    finally:
        subprocess.run(["umount", str(root / "exp")], check=True)


def test_a_move_across_filesystems_copies_links_as_links_then_removes_the_source(mounted):
    root = mounted
    run = root / "exp/executions/run"
    (run / "to-outside").symlink_to(outside(root), target_is_directory=True)
    (run / "callbacks").mkdir()
    (run / "callbacks" / "w.h5").write_bytes(b"weights")
    before = digest(run / "model.h5")
    assert os.stat(run).st_dev != os.stat(root).st_dev

    fileops.move(root, run, ".trash/exp/executions/run")

    moved = root / ".trash/exp/executions/run"
    assert not run.exists()
    assert digest(moved / "model.h5") == before
    assert (moved / "callbacks" / "w.h5").read_bytes() == b"weights"
    assert os.readlink(moved / "to-outside") == str(outside(root))
    assert (outside(root) / "precious.h5").is_file()
    assert [name for name in os.listdir(moved.parent) if name.endswith(".partial")] == []
