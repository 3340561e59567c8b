"""Datasets: built-in ones, the Keras ones through a seeded cache (no network here), and user files."""

import logging

import h5py
import numpy as np
import pytest

from experiments.pipeline import datasets
from experiments.pipeline.datasets import HDFManager, get_dataset, load_file


@pytest.fixture
def gymnos_log(caplog):
    caplog.set_level(logging.DEBUG, logger="gymnosd")
    return caplog


def messages(caplog):
    return [f"{record.name.rsplit('.', 1)[-1]} - {record.getMessage()}" for record in caplog.records]


def test_boston_housing_is_506_samples_of_13_features_with_medv_as_target(cache_dir):
    X, y = get_dataset("boston_housing").load(cache_dir)
    assert X.shape == (506, 13)
    assert y.shape == (506,)
    assert y[0] == pytest.approx(24.0)  # MASS::Boston's first medv


@pytest.mark.parametrize(
    "name, shape",
    [
        ("iris", (150, 4)),
        ("wine", (178, 13)),
        ("diabetes", (442, 10)),
        ("breast_cancer", (569, 30)),
        ("digits", (1797, 64)),
    ],
)
def test_scikit_learn_datasets_load_offline(name, shape, cache_dir):
    X, y = get_dataset(name).load(cache_dir)
    assert X.shape == shape
    assert len(y) == shape[0]


def test_first_load_writes_the_cache_and_later_loads_read_it(cache_dir, gymnos_log):
    X, y = get_dataset("boston_housing").load(cache_dir)
    cache_file = cache_dir / "datasets" / "BostonHousing.h5"
    assert cache_file.is_file()
    first = messages(gymnos_log)
    assert first[:4] == [
        "BostonHousing - Downloading dataset ...",
        "BostonHousing - Retrieving dataset from library ...",
        "BostonHousing - Reading dataset ...",
        "BostonHousing - Saving dataset to cache ...",
    ]
    assert f"HDFManager - Saving Numpy dataset to HDF5 X key ({cache_file})" in first
    gymnos_log.clear()

    X2, y2 = get_dataset("boston_housing").load(cache_dir)
    assert np.array_equal(X, X2)
    assert np.array_equal(y, y2)
    again = messages(gymnos_log)
    assert not any("Downloading" in line for line in again)
    assert f"HDFManager - Loading Numpy dataset from HDF5 X key ({cache_file})" in again


def test_an_unreadable_cache_file_is_replaced_by_a_fresh_read(cache_dir, gymnos_log):
    cache_file = cache_dir / "datasets" / "Iris.h5"
    cache_file.parent.mkdir(parents=True)
    cache_file.write_bytes(b"not an hdf5 file")
    X, _ = get_dataset("iris").load(cache_dir)
    assert X.shape == (150, 4)
    assert any("Ignoring unreadable cache file" in line for line in messages(gymnos_log))
    assert HDFManager(cache_file).load()[0].shape == (150, 4)


KERAS_DATASETS = {
    "mnist": ("MNIST", (12, 28, 28), np.uint8),
    "fashion_mnist": ("FashionMNIST", (12, 28, 28), np.uint8),
    "cifar10": ("CIFAR10", (12, 32, 32, 3), np.uint8),
    "imdb": ("IMDB", (12, 200), np.int32),
    "reuters": ("Reuters", (12, 200), np.int32),
}


@pytest.mark.parametrize("name", sorted(KERAS_DATASETS))
def test_keras_datasets_load_from_a_seeded_cache_without_downloading(name, cache_dir, gymnos_log):
    cache_name, shape, dtype = KERAS_DATASETS[name]
    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, size=shape).astype(dtype)
    y = rng.integers(0, 10, size=shape[0])
    HDFManager(cache_dir / "datasets" / f"{cache_name}.h5").save(X, y)
    gymnos_log.clear()

    X2, y2 = get_dataset(name).load(cache_dir)
    assert np.array_equal(X2, X)
    assert np.array_equal(y2, y)
    assert not any("Downloading" in line for line in messages(gymnos_log))


def test_csv_files_take_their_target_column(tmp_path):
    data = tmp_path / "houses.csv"
    data.write_text("rooms,area,price\n1,20,100\n2,40,210\n3,65,290\n")
    X, y = load_file(data, target="price")
    assert X.tolist() == [[1, 20], [2, 40], [3, 65]]
    assert y.tolist() == [100, 210, 290]


def test_npz_and_hdf5_files_hold_X_and_y(tmp_path):
    X, y = np.arange(12, dtype="float32").reshape(6, 2), np.arange(6)
    np.savez(tmp_path / "data.npz", X=X, y=y)
    with h5py.File(tmp_path / "data.h5", "w") as f:
        f["X"], f["y"] = X, y
    for name in ("data.npz", "data.h5"):
        X2, y2 = load_file(tmp_path / name)
        assert np.array_equal(X2, X)
        assert np.array_equal(y2, y)


def test_an_npz_without_X_says_what_it_holds(tmp_path):
    np.savez(tmp_path / "data.npz", features=np.zeros(3), y=np.zeros(3))
    with pytest.raises(ValueError, match=r"has no array named X \(it holds: features, y\)"):
        load_file(tmp_path / "data.npz")


def test_file_datasets_are_filed_under_a_name_from_the_file():
    assert datasets.file_dataset_name("data/House Prices.csv") == "house_prices"
