"""The weights file of a run's kept state (#23): safetensors, read back whole or not at all, and the HDF5 files of the
layouts before it (packed by dtype; one dataset a variable) still read, so a run killed before an upgrade resumes
after it."""

import json

import h5py
import keras
import numpy as np
import pytest
from safetensors import safe_open

from experiments.pipeline.kept_state import _variables, is_kept_variables, load_variables, save_variables

pytestmark = [pytest.mark.training]


def _model(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.fit(np.random.rand(8, 3), np.random.rand(8), epochs=2, verbose=0)  # Adam's moments and iterations set
    return model


def _values(model: keras.Model) -> list[np.ndarray]:
    return [np.array(variable) for variable in _variables(model)]


def _assert_loaded(fresh: keras.Model, trained: keras.Model) -> None:
    for got, want in zip(_values(fresh), _values(trained), strict=True):
        np.testing.assert_array_equal(got, want)
    assert int(fresh.optimizer.iterations) == int(trained.optimizer.iterations) == 2


def _packed_hdf5(model: keras.Model, path) -> None:
    """What the engine wrote on 2026-12-06: one dataset per dtype and a JSON layout of where each variable is."""
    variables = [np.array(variable) for variable in _variables(model)]
    dtypes = list(dict.fromkeys(value.dtype.str for value in variables))
    layout, sizes = [], dict.fromkeys(dtypes, 0)
    for value in variables:
        layout.append([dtypes.index(value.dtype.str), sizes[value.dtype.str], list(value.shape)])
        sizes[value.dtype.str] += value.size
    with h5py.File(path, "w") as handle:
        handle.attrs["count"] = len(variables)
        handle.attrs["dtypes"] = dtypes
        handle.attrs["layout"] = json.dumps(layout)
        for index, dtype in enumerate(dtypes):
            handle.create_dataset(
                f"packed-{index}", data=np.concatenate([v.reshape(-1) for v in variables if v.dtype.str == dtype])
            )


def test_the_model_and_its_optimizer_come_back_exactly_from_a_safetensors_file(tmp_path):
    trained, fresh = _model(1), _model(2)
    path = tmp_path / "epoch-2.weights.safetensors"
    save_variables(trained, path)
    with safe_open(str(path), framework="numpy") as handle:
        metadata = handle.metadata()
        assert int(metadata["count"]) == len(_variables(trained)) == len(handle.keys())
        assert json.loads(metadata["paths"]) == [variable.path for variable in _variables(trained)]
    assert is_kept_variables(path)
    load_variables(fresh, path)
    _assert_loaded(fresh, trained)


def test_a_safetensors_file_cut_short_loads_nothing_and_says_so(tmp_path):
    trained, fresh = _model(1), _model(2)
    path = tmp_path / "epoch-2.weights.safetensors"
    save_variables(trained, path)
    path.write_bytes(path.read_bytes()[:-8])
    assert not is_kept_variables(path)
    before = _values(fresh)
    with pytest.raises(ValueError, match="not a whole safetensors file"):
        load_variables(fresh, path)
    for got, want in zip(_values(fresh), before, strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_file_in_the_packed_hdf5_layout_is_read_too(tmp_path):
    trained, fresh = _model(1), _model(2)
    path = tmp_path / "epoch-2.weights.h5"
    _packed_hdf5(trained, path)
    assert is_kept_variables(path)
    load_variables(fresh, path)
    _assert_loaded(fresh, trained)


def test_a_file_in_the_layout_before_one_dataset_a_variable_is_read_too(tmp_path):
    trained, fresh = _model(1), _model(2)
    path = tmp_path / "epoch-2.weights.h5"
    with h5py.File(path, "w") as handle:  # what the engine wrote before the packed layout
        variables = _variables(trained)
        handle.attrs["count"] = len(variables)
        handle.attrs["paths"] = [variable.path for variable in variables]
        for index, variable in enumerate(variables):
            handle.create_dataset(str(index), data=np.array(variable))
    load_variables(fresh, path)
    _assert_loaded(fresh, trained)


def test_a_layout_that_does_not_fit_its_data_loads_nothing_and_says_which_variable(tmp_path):
    trained, fresh = _model(1), _model(2)
    path = tmp_path / "epoch-2.weights.h5"
    _packed_hdf5(trained, path)
    with h5py.File(path, "r+") as handle:
        layout = json.loads(handle.attrs["layout"])
        layout[3][1] = 10**9  # the fourth variable placed past the end of its dtype's data
        handle.attrs["layout"] = json.dumps(layout)
    before = _values(fresh)
    with pytest.raises(ValueError, match="no whole variable 3"):
        load_variables(fresh, path)
    for got, want in zip(_values(fresh), before, strict=True):
        np.testing.assert_array_equal(got, want)  # every variable as it was: none set from a bad file
