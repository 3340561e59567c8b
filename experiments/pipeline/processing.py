"""Split a dataset, apply stateless preprocessors, and fit/apply scikit-learn transformers.

Preprocessors act on each sample alone (no statistics), so they may run on the whole dataset.
Transformers learn statistics, so they are fitted on the fit split only and then applied to
every split: nothing about the validation or test samples leaks into training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import SpecError, did_you_mean, unknown_type_message


# --- split -------------------------------------------------------------------------------


@dataclass
class Split:
    fit: np.ndarray
    val: np.ndarray
    test: np.ndarray


def split_indices(n_samples, fit, val, test, shuffle=True, seed=0):
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


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Divide(_Args):
    factor: float = Field(255.0, description="divide every value by this")

    def __call__(self, X):
        if self.factor == 0:
            raise ValueError("divide.factor must not be 0")
        return X.astype("float32") / self.factor


class Replace(_Args):
    from_val: float | int | str
    to_val: float | int | str

    def __call__(self, X):
        X = X.copy()
        X[X == self.from_val] = self.to_val
        return X


class Reshape(_Args):
    shape: list[int] = Field(description="new shape of each sample; one -1 is allowed")

    def __call__(self, X):
        return X.reshape((len(X), *self.shape))


class ImageResize(_Args):
    width: int = Field(gt=0)
    height: int = Field(gt=0)

    def __call__(self, X):
        import tensorflow as tf

        images = X if X.ndim == 4 else X[..., np.newaxis]
        resized = tf.image.resize(images.astype("float32"), (self.height, self.width)).numpy()
        return resized if X.ndim == 4 else resized[..., 0]


class Grayscale(_Args):
    def __call__(self, X):
        if X.shape[-1] != 3:
            raise ValueError(f"grayscale expects RGB images (last axis of size 3), got samples of shape {X.shape[1:]}")
        # ITU-R BT.601 luma weights, as PIL and TensorFlow use.
        return (X.astype("float32") @ np.array([0.299, 0.587, 0.114], dtype="float32"))[..., np.newaxis]


PREPROCESSORS = {
    "divide": Divide,
    "replace": Replace,
    "reshape": Reshape,
    "image_resize": ImageResize,
    "grayscale": Grayscale,
}


def _pydantic_spec_error(exc: ValidationError):
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return SpecError("unknown argument", key)
    if error["type"] == "missing":
        return SpecError("is required", key)
    return SpecError(f"{error['msg'][0].lower()}{error['msg'][1:]}, got {error.get('input')!r}", key)


def make_preprocessor(type_name, kwargs):
    cls = PREPROCESSORS.get(type_name)
    if cls is None:
        raise SpecError(unknown_type_message("preprocessor type", type_name, PREPROCESSORS), "type")
    try:
        preprocessor = cls(**kwargs)
    except ValidationError as exc:
        raise _pydantic_spec_error(exc) from exc
    if isinstance(preprocessor, Divide) and preprocessor.factor == 0:
        raise SpecError("must not be 0", "factor")
    return preprocessor


# --- transformers (fitted on the fit split) ----------------------------------------------


def _transformer_classes():
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, Normalizer, RobustScaler, StandardScaler

    return {
        "standard_scaler": StandardScaler,
        "min_max_scaler": MinMaxScaler,
        "max_abs_scaler": MaxAbsScaler,
        "robust_scaler": RobustScaler,
        "normalizer": Normalizer,
        "pca": PCA,
    }


TRANSFORMER_TYPES = ("standard_scaler", "min_max_scaler", "max_abs_scaler", "robust_scaler", "normalizer", "pca")


def make_transformer(type_name, kwargs):
    """A scikit-learn estimator with ``kwargs``, its parameters checked now rather than at fit time."""
    classes = _transformer_classes()
    cls = classes.get(type_name)
    if cls is None:
        raise SpecError(unknown_type_message("transformer type", type_name, classes), "type")
    accepted = cls().get_params()
    for key in kwargs:
        if key not in accepted:
            raise SpecError(
                f"unknown argument{did_you_mean(key, accepted)} (it accepts: {', '.join(sorted(accepted))})", key
            )
    kwargs = {key: tuple(value) if isinstance(value, list) else value for key, value in kwargs.items()}
    estimator = cls(**kwargs)
    try:
        # scikit-learn checks parameters lazily at fit(); ask for the same check up front.
        estimator._validate_params()
    except Exception as exc:
        message = str(exc).strip().splitlines()[0]
        named = next((key for key in kwargs if f"'{key}'" in message), "")
        raise SpecError(message, named) from exc
    return estimator


class TransformerChain:
    """Fit transformers in order on the fit split, then transform any split with all of them.

    Samples with more than one axis (images) are flattened for the transformer and reshaped
    back afterwards when the transformer keeps their size.
    """

    def __init__(self, transformers):
        self.transformers = list(transformers)

    def fit(self, X):
        for transformer in self.transformers:
            X = self._apply(transformer, X, fit=True)
        return self

    def transform(self, X):
        for transformer in self.transformers:
            X = self._apply(transformer, X, fit=False)
        return X

    @staticmethod
    def _apply(transformer, X, fit):
        flat = X.reshape(len(X), -1)
        if fit:
            transformer.fit(flat)
        out = transformer.transform(flat)
        if out.shape[1] == flat.shape[1]:
            out = out.reshape(X.shape)
        return out.astype("float32", copy=False)
