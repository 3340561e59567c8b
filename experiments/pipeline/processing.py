"""Split a dataset, apply stateless preprocessors, and fit/apply scikit-learn transformers.

Preprocessors act on each sample alone (no statistics), so they may run on the whole dataset.
Transformers learn statistics, so they are fitted on the fit split only and then applied to
every split: nothing about the validation or test samples leaks into training.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

import numpy as np
from pydantic import AfterValidator, Field

from .errors import ComponentError, invalid
from .schema import Component, Explained, UnionKind

# --- split -------------------------------------------------------------------------------


@dataclass
class Split:
    fit: np.ndarray
    val: np.ndarray
    test: np.ndarray


def split_indices(n_samples: int, fit: float, val: float, test: float, shuffle: bool = True, seed: int = 0) -> Split:
    """Indices for each split; the same seed always gives the same split.

    Sizes are ``floor(fraction * n)``, as the original Gymnos did (506 samples at 0.6 -> 303).

    >>> s = split_indices(10, 0.6, 0.2, 0.2, seed=1); len(s.fit), len(s.val), len(s.test)
    (6, 2, 2)
    """
    order = np.random.RandomState(seed).permutation(n_samples) if shuffle else np.arange(n_samples)
    n_fit, n_val, n_test = (math.floor(fraction * n_samples + 1e-9) for fraction in (fit, val, test))
    return Split(
        fit=order[:n_fit],
        val=order[n_fit : n_fit + n_val],
        test=order[n_fit + n_val : n_fit + n_val + n_test],
    )


# --- preprocessors (stateless) -----------------------------------------------------------


class Preprocessor(Component):
    """A stateless step applied to every sample before the split: ``preprocessor(X) -> X``."""

    def __call__(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _not_zero(value: float) -> float:
    if value == 0:
        raise invalid("must not be 0")
    return value


class Divide(Preprocessor):
    """Divide every value by ``factor`` (255 turns bytes into 0..1)."""

    type: Literal["divide"]
    factor: Annotated[float, AfterValidator(_not_zero)] = 255.0

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return X.astype("float32") / self.factor


class Replace(Preprocessor):
    """Replace every ``from_val`` with ``to_val``."""

    type: Literal["replace"]
    from_val: float | str
    to_val: float | str

    def __call__(self, X: np.ndarray) -> np.ndarray:
        X = X.copy()
        X[X == self.from_val] = self.to_val
        return X


class Reshape(Preprocessor):
    """Give each sample a new shape; one -1 is allowed."""

    type: Literal["reshape"]
    shape: Annotated[list[int], Field(min_length=1)]

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return X.reshape((len(X), *self.shape))


class ImageResize(Preprocessor):
    """Resize images to ``width`` x ``height`` (bilinear)."""

    type: Literal["image_resize"]
    width: Annotated[int, Field(gt=0)]
    height: Annotated[int, Field(gt=0)]

    def __call__(self, X: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        images = X if X.ndim == 4 else X[..., np.newaxis]
        resized = tf.image.resize(images.astype("float32"), (self.height, self.width)).numpy()
        return resized if X.ndim == 4 else resized[..., 0]


class Grayscale(Preprocessor):
    """Turn RGB images into one channel (ITU-R BT.601 luma, as PIL and TensorFlow weigh it)."""

    type: Literal["grayscale"]

    def __call__(self, X: np.ndarray) -> np.ndarray:
        if X.shape[-1] != 3:
            raise ValueError(f"grayscale expects RGB images (last axis of size 3), got samples of shape {X.shape[1:]}")
        return (X.astype("float32") @ np.array([0.299, 0.587, 0.114], dtype="float32"))[..., np.newaxis]


PreprocessorSpec = Annotated[
    Union[Divide, Replace, Reshape, ImageResize, Grayscale],  # noqa: UP007 - a discriminated union
    Field(discriminator="type"),
    UnionKind("preprocessor type"),
]


# --- transformers (fitted on the fit split) ----------------------------------------------


class Transformer(Component):
    """A scikit-learn estimator by name; its fields are the estimator's parameters."""

    def make(self) -> Any:
        """The estimator, its parameters checked by scikit-learn now rather than at fit time."""
        import sklearn.decomposition
        import sklearn.preprocessing

        name = type(self).__name__
        cls = getattr(sklearn.preprocessing, name, None) or getattr(sklearn.decomposition, name)
        params = {
            key: tuple(value) if isinstance(value, list) else value
            for key, value in self.model_dump(exclude={"type"}).items()
        }
        estimator = cls(**params)
        try:
            estimator._validate_params()
        except Exception as exc:  # scikit-learn's InvalidParameterError names the parameter
            message = str(exc).strip().splitlines()[0]
            raise ComponentError(message, next((key for key in params if f"'{key}'" in message), "")) from exc
        return estimator


Bounds = Annotated[list[float], Field(min_length=2, max_length=2), Explained("a list of two numbers [low, high]")]


class StandardScaler(Transformer):
    type: Literal["standard_scaler"]
    with_mean: bool = True
    with_std: bool = True


class MinMaxScaler(Transformer):
    type: Literal["min_max_scaler"]
    feature_range: Bounds = [0.0, 1.0]
    clip: bool = False


class MaxAbsScaler(Transformer):
    type: Literal["max_abs_scaler"]
    clip: bool = False


class RobustScaler(Transformer):
    type: Literal["robust_scaler"]
    with_centering: bool = True
    with_scaling: bool = True
    quantile_range: Bounds = [25.0, 75.0]
    unit_variance: bool = False


class Normalizer(Transformer):
    type: Literal["normalizer"]
    norm: Literal["l1", "l2", "max"] = "l2"


class PCA(Transformer):
    type: Literal["pca"]
    n_components: Annotated[
        Annotated[int, Field(gt=0)] | Annotated[float, Field(gt=0, lt=1)] | Literal["mle"] | None,
        Explained('a number of components (a positive integer), a fraction of variance between 0 and 1, "mle" or null'),
    ] = None
    whiten: bool = False
    svd_solver: Literal["auto", "full", "covariance_eigh", "arpack", "randomized"] = "auto"
    tol: Annotated[float, Field(ge=0)] = 0.0
    iterated_power: Annotated[int, Field(ge=0)] | Literal["auto"] = "auto"
    n_oversamples: Annotated[int, Field(gt=0)] = 10
    power_iteration_normalizer: Literal["auto", "QR", "LU", "none"] = "auto"
    random_state: Annotated[int, Field(ge=0)] | None = None


TransformerSpec = Annotated[
    Union[StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler, Normalizer, PCA],  # noqa: UP007
    Field(discriminator="type"),
    UnionKind("transformer type"),
]


class TransformerChain:
    """Fit transformers in order on the fit split, then transform any split with all of them.

    Samples with more than one axis (images) are flattened for the transformer and reshaped
    back afterwards when the transformer keeps their size.
    """

    def __init__(self, transformers: Iterable[Any]) -> None:
        self.transformers = list(transformers)

    def fit(self, X: np.ndarray) -> TransformerChain:
        for transformer in self.transformers:
            X = self._apply(transformer, X, fit=True)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        for transformer in self.transformers:
            X = self._apply(transformer, X, fit=False)
        return X

    @staticmethod
    def _apply(transformer: Any, X: np.ndarray, fit: bool) -> np.ndarray:
        flat = X.reshape(len(X), -1)
        if fit:
            transformer.fit(flat)
        out = transformer.transform(flat)
        if out.shape[1] == flat.shape[1]:
            out = out.reshape(X.shape)
        return out.astype("float32", copy=False)
