"""The Gymnos training engine: config in, execution folder out. Imports nothing from Django.

from experiments.pipeline import check_build, load_config, run_experiment

config = load_config(data)      # the schema: every problem at once, no Keras imported
check_build(config)             # what only Keras can tell (layers, shapes); builds the model
result = run_experiment(config, trainings_root="trainings", cache_dir="cache")
"""

import os

# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notices) drowns the run's own log.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .build_check import check_build
from .config import TrainingConfig, load_config, load_config_file
from .errors import ConfigError, Problem
from .trainer import ExecutionResult, run_experiment

__all__ = [
    "TrainingConfig",
    "check_build",
    "load_config",
    "load_config_file",
    "ConfigError",
    "Problem",
    "run_experiment",
    "ExecutionResult",
]
