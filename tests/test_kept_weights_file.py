"""The weights file of a run's kept state (#23): packed by dtype, read back whole or not at all, and a file in the
layout before it (one dataset a variable) still read, so a run killed before an upgrade resumes after it."""

import json

import h5py
import keras
import numpy as np
import pytest

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


def test_the_model_and_its_optimizer_come_back_exactly_from_one_dataset_a_dtype(tmp_path):
    trained, fresh = _model(1), _model(2)
    path = tmp_path / "epoch-2.weights.h5"
    save_variables(trained, path)
    with h5py.File(path, "r") as handle:
        assert sorted(handle) == [f"packed-{index}" for index in range(len(handle.attrs["dtypes"]))]
        assert len(handle) < handle.attrs["count"]  # not one dataset a variable
    assert is_kept_variables(path)
    load_variables(fresh, path)
    for got, want in zip(_values(fresh), _values(trained), strict=True):
        np.testing.assert_array_equal(got, want)
    assert int(fresh.optimizer.iterations) == int(trained.optimizer.iterations) == 2


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
    for got, want in zip(_values(fresh), _values(trained), strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_layout_that_does_not_fit_its_data_loads_nothing_and_says_which_variable(tmp_path):
    trained, fresh = _model(1), _model(2)
    path = tmp_path / "epoch-2.weights.h5"
    save_variables(trained, path)
    with h5py.File(path, "r+") as handle:
        layout = json.loads(handle.attrs["layout"])
        layout[3][1] = 10**9  # the fourth variable placed past the end of its dtype's data
        handle.attrs["layout"] = json.dumps(layout)
    before = _values(fresh)
    with pytest.raises(ValueError, match="no whole variable 3"):
        load_variables(fresh, path)
    for got, want in zip(_values(fresh), before, strict=True):
        np.testing.assert_array_equal(got, want)  # every variable as it was: none set from a bad file
