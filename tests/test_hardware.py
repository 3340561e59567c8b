"""metrics.json's ``hardware`` section: which Keras backend trained the run, and the GPUs that backend sees."""

import importlib.metadata

import keras
import pytest

from experiments.pipeline import hardware


def test_it_names_the_keras_backend_and_the_installed_tensorflow():
    described = hardware.describe()
    assert described["backend"] == keras.backend.backend()
    assert described["tensorflow"] == importlib.metadata.version("tensorflow")
    assert described["keras"] == keras.__version__


def test_a_missing_tensorflow_is_none_not_an_error():
    assert hardware._version("no-such-distribution") is None


def test_the_tensorflow_path_lists_no_gpu_on_a_machine_without_one():
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU TensorFlow can use")
    assert hardware._gpus("tensorflow") == ()


@pytest.mark.parametrize("backend", ["numpy", "openvino", "no-such-backend"])
def test_a_backend_that_trains_on_no_gpu_lists_none(backend):
    assert hardware._gpus(backend) == ()


def test_a_backend_that_is_not_installed_lists_no_gpu_and_raises_nothing(monkeypatch):
    def missing():
        raise ImportError("No module named 'torch'")

    monkeypatch.setitem(hardware._GPU_LISTERS, "fake", missing)
    assert hardware._gpus("fake") == ()
