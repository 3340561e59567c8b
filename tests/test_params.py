"""A run's params in one canonical form: a component given by its name and the same one given as
``{"type": ...}`` with its defaults are the same params, for sync, search, columns, launches and sweeps."""

import json

import pytest

from experiments.index import listing, reader
from experiments.index.sync import sync_trainings
from experiments.jobs import launching
from experiments.models import Execution
from experiments.pipeline import load_config
from experiments.pipeline.config import canonical_params
from experiments.pipeline.params import flatten
from experiments.search.catalog import catalog
from sweeps.forms import rows_for
from tests.folders import write_execution
from tests.helpers import seed_config

RATE = "model.compilation.optimizer.learning_rate"
TYPE = "model.compilation.optimizer.type"


def swept(rate):
    """The seed's config as a sweep over the learning rate writes it: the optimizer spelt out."""
    config = seed_config()
    config["model"]["compilation"]["optimizer"] = {"type": "adam", "learning_rate": rate}
    return config


def test_a_component_given_by_name_and_as_an_object_with_its_defaults_are_the_same_params():
    bare = seed_config()
    spelt_out = seed_config()
    spelt_out["model"]["compilation"]["optimizer"] = {"type": "adam"}
    spelt_out["training"]["callbacks"][0] = {"type": "early_stopping", "patience": 0, "monitor": "val_loss"}
    spelt_out["training"]["shuffle"] = True
    assert load_config(bare).params == load_config(spelt_out).params
    params = load_config(bare).params
    assert params[TYPE] == "adam"
    assert "model.compilation.optimizer" not in params
    assert params["training.callbacks[0].patience"] == 0
    assert params["training.batch_size"] == 32


def test_a_config_that_no_longer_validates_keeps_its_params_as_written():
    config = seed_config()
    config["model"]["network"][0]["units"] = -5
    assert canonical_params(config) == flatten(config)


def test_a_file_dataset_that_is_not_on_this_machine_still_has_canonical_params():
    config = seed_config()
    config["dataset"] = {"path": "/nowhere/house prices.csv", "target": "price"}
    assert canonical_params(config)[TYPE] == "adam"


@pytest.mark.django_db
def test_a_sweeps_runs_and_its_base_have_one_optimizer_column_not_three(root):
    """The base says "adam", its trials {"type": "adam", "learning_rate": ...}: one type, one rate column."""
    write_execution(root, "06-16-31__08-04-2019", config=seed_config())
    for index, rate in enumerate([0.01, 0.003, 0.0005]):
        write_execution(root, f"07-0{index}-00__08-04-2019", config=swept(rate))
    sync_trainings(root)
    first = Execution.objects.first()
    assert first is not None
    known = catalog(first.experiment_id)
    optimizer = [key for key in known.keys if ".optimizer" in key]
    assert optimizer == [f"params.{RATE}", f"params.{TYPE}"]
    assert known.varying == [f"params.{RATE}"]  # the type is the same everywhere


@pytest.mark.django_db
def test_a_resync_brings_runs_indexed_before_to_the_canonical_form(root, monkeypatch):
    write_execution(root, config=seed_config())
    with monkeypatch.context() as patch:  # indexed by the reader before canonical params
        patch.setattr(listing, "READER_VERSION", b"4")
        patch.setattr(reader, "_params_json", lambda data: json.dumps(flatten(seed_config())))
        sync_trainings(root)
    assert Execution.objects.get().params["model.compilation.optimizer"] == "adam"
    assert sync_trainings(root).indexed == 1  # the reader's version is in the fingerprint: the folder is read again
    params = Execution.objects.get().params
    assert params[TYPE] == "adam"
    assert "model.compilation.optimizer" not in params


@pytest.mark.django_db
def test_a_launched_run_has_the_params_its_folder_will_sync_to(real_queues, owner):
    execution = launching.launch(seed_config(), user=owner, check=lambda config: [])
    assert execution.params == load_config(seed_config()).params
    assert execution.params[TYPE] == "adam"


def test_the_sweep_form_offers_the_paths_the_params_columns_show():
    paths = [row["path"] for row in rows_for(seed_config())]
    assert TYPE in paths
    assert paths.index(RATE) == paths.index(TYPE) + 1
    assert "model.compilation.optimizer" not in paths
    assert "training.seed" in paths  # a section's default: worth searching
    assert "training.callbacks[1].period" in paths  # written in the config
    assert "training.callbacks[0].patience" not in paths  # a callback's default: not listed
