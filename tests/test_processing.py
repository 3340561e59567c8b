"""Split, preprocessors and transformers."""

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from experiments.pipeline.processing import PreprocessorSpec, TransformerChain, TransformerSpec, split_indices


def make_preprocessor(type_name, kwargs):
    return TypeAdapter(PreprocessorSpec).validate_python({"type": type_name, **kwargs})


def make_transformer(type_name, kwargs):
    return TypeAdapter(TransformerSpec).validate_python({"type": type_name, **kwargs}).make()


def test_split_sizes_follow_the_fractions_as_the_seed_shows():
    split = split_indices(506, 0.6, 0.2, 0.2)
    assert (len(split.fit), len(split.val), len(split.test)) == (303, 101, 101)


def test_the_same_seed_gives_the_same_split_and_another_seed_another():
    a, b, c = (split_indices(100, 0.6, 0.2, 0.2, seed=seed) for seed in (7, 7, 8))
    assert all(np.array_equal(getattr(a, part), getattr(b, part)) for part in ("fit", "val", "test"))
    assert not np.array_equal(a.fit, c.fit)


def test_splits_are_disjoint():
    split = split_indices(1000, 0.5, 0.3, 0.2, seed=3)
    together = np.concatenate([split.fit, split.val, split.test])
    assert len(np.unique(together)) == len(together) == 1000


def test_without_shuffle_the_split_keeps_the_order():
    split = split_indices(10, 0.6, 0.2, 0.2, shuffle=False)
    assert split.fit.tolist() == [0, 1, 2, 3, 4, 5]
    assert split.test.tolist() == [8, 9]


def test_divide_replace_and_reshape():
    X = np.array([[0, 255, 510, 765]], dtype="float32")
    assert make_preprocessor("divide", {"factor": 255.0})(X).tolist() == [[0, 1, 2, 3]]
    assert make_preprocessor("replace", {"from_val": 255, "to_val": -1})(X).tolist() == [[0, -1, 510, 765]]
    assert make_preprocessor("reshape", {"shape": [2, 2]})(X).shape == (1, 2, 2)


def test_image_resize_and_grayscale():
    images = np.random.default_rng(0).integers(0, 255, size=(3, 8, 8, 3)).astype("uint8")
    resized = make_preprocessor("image_resize", {"width": 4, "height": 6})(images)
    assert resized.shape == (3, 6, 4, 3)
    gray = make_preprocessor("grayscale", {})(images)
    assert gray.shape == (3, 8, 8, 1)
    expected = 0.299 * images[0, 0, 0, 0] + 0.587 * images[0, 0, 0, 1] + 0.114 * images[0, 0, 0, 2]
    assert gray[0, 0, 0, 0] == pytest.approx(expected, rel=1e-5)


def test_divide_by_zero_is_rejected_up_front():
    with pytest.raises(ValidationError) as caught:
        make_preprocessor("divide", {"factor": 0})
    assert caught.value.errors()[0]["loc"] == ("divide", "factor")


@pytest.mark.parametrize("name", ["standard_scaler", "min_max_scaler", "robust_scaler", "normalizer", "pca"])
def test_each_transformer_fits_and_transforms(name):
    X = np.random.default_rng(1).normal(size=(50, 4)).astype("float32")
    chain = TransformerChain([make_transformer(name, {"n_components": 2} if name == "pca" else {})])
    out = chain.fit(X).transform(X)
    assert out.shape == ((50, 2) if name == "pca" else (50, 4))


def test_transformers_see_only_the_fit_split():
    rng = np.random.default_rng(2)
    X = np.concatenate([rng.normal(0, 1, size=(80, 3)), rng.normal(1000, 1, size=(20, 3))]).astype("float32")
    fit_part, held_out = X[:80], X[80:]
    chain = TransformerChain([make_transformer("standard_scaler", {})]).fit(fit_part)
    scaler = chain.transformers[0]
    assert np.allclose(scaler.mean_, fit_part.mean(axis=0), atol=1e-4)
    # Held-out samples are far from the fit statistics, as they must be if nothing leaked.
    assert chain.transform(held_out).mean() > 100


def test_images_are_flattened_for_the_transformer_and_shaped_back():
    images = np.random.default_rng(3).random((10, 4, 4, 1)).astype("float32")
    out = TransformerChain([make_transformer("min_max_scaler", {})]).fit(images).transform(images)
    assert out.shape == images.shape
    assert out.min() == pytest.approx(0)
    assert out.max() == pytest.approx(1)
