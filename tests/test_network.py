"""The layer builder: Keras layers by snake_case name, chained into a model that trains and saves."""

from typing import Any

import keras
import numpy as np
import pytest

from experiments.pipeline.errors import ComponentError
from experiments.pipeline.network import LayerSpec, OptimizerSpec, make_layer, make_optimizer, metric_name
from experiments.pipeline.network import build_model as build_from_specs


def build_model(input_shape, pairs):
    return build_from_specs(input_shape, [LayerSpec(type=name, **kwargs) for name, kwargs in pairs])


@pytest.mark.parametrize(
    "type_name, cls",
    [
        ("dense", keras.layers.Dense),
        ("conv_2d", keras.layers.Conv2D),
        ("conv2d", keras.layers.Conv2D),
        ("max_pooling_2d", keras.layers.MaxPooling2D),
        ("dropout", keras.layers.Dropout),
        ("flatten", keras.layers.Flatten),
        ("batch_normalization", keras.layers.BatchNormalization),
        ("lstm", keras.layers.LSTM),
        ("gru", keras.layers.GRU),
    ],
)
def test_layer_types_resolve_to_keras_classes(type_name, cls):
    known: dict[str, dict[str, Any]] = {
        "dense": {"units": 2},
        "conv_2d": {"filters": 2, "kernel_size": 3},
        "conv2d": {"filters": 2, "kernel_size": 3},
        "dropout": {"rate": 0.5},
        "lstm": {"units": 2},
        "gru": {"units": 2},
    }
    kwargs = known.get(type_name, {})
    assert isinstance(make_layer(type_name, kwargs), cls)


def test_a_convolutional_network_builds_and_predicts():
    model = build_model(
        [8, 8, 1],
        [
            ("conv_2d", {"filters": 4, "kernel_size": [3, 3], "activation": "relu"}),
            ("max_pooling_2d", {"pool_size": 2}),
            ("flatten", {}),
            ("dropout", {"rate": 0.2}),
            ("dense", {"units": 3, "activation": "softmax"}),
        ],
    )
    assert model.predict(np.zeros((2, 8, 8, 1)), verbose=0).shape == (2, 3)


def test_a_sequence_network_with_embedding_reshape_and_recurrent_layers():
    model = build_model(
        [10],
        [
            ("embedding", {"input_dim": 50, "output_dim": 4}),
            ("lstm", {"units": 3, "return_sequences": True}),
            ("gru", {"units": 2}),
            ("reshape", {"target_shape": [2, 1]}),
            ("flatten", {}),
            ("dense", {"units": 1}),
        ],
    )
    assert model.predict(np.zeros((2, 10), dtype="int32"), verbose=0).shape == (2, 1)


def test_a_shape_error_names_the_layer_index():
    with pytest.raises(ComponentError) as caught:
        build_model([4], [("dense", {"units": 2}), ("lstm", {"units": 2})])
    assert caught.value.at == "[1]"


def test_a_missing_required_argument_is_named():
    with pytest.raises(ComponentError, match="dense needs 'units'"):
        make_layer("dense", {})


def test_optimizers_take_their_arguments():
    optimizer = make_optimizer(OptimizerSpec.model_validate({"type": "sgd", "learning_rate": 0.05, "momentum": 0.5}))
    assert float(optimizer.learning_rate) == pytest.approx(0.05)


def test_metric_aliases_are_logged_under_the_seed_names():
    assert metric_name("mae") == "mean_absolute_error"
    assert metric_name("mse") == "mean_squared_error"
    assert metric_name("accuracy") == "accuracy"
    assert metric_name("acc") == "accuracy"
