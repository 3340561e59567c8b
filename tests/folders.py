"""Execution folders for tests: the seed's layout written to disk, and runs indexed from them."""

import datetime as dt
import json
from typing import Any

from django.test import Client

from experiments.index.sync import sync_trainings
from experiments.models import Execution
from tests.helpers import seed_config

UTC = dt.UTC

# metrics.json exactly as the seed documents it: 4 epochs, elapsed and metrics, no hardware.
SEED_METRICS: dict[str, Any] = {
    "elapsed": {
        "transform_preprocessors": 0.003850698471069336,
        "fit_model": 2.338494300842285,
        "transform_transformers": 0.0006225109100341797,
        "evaluate_model": 0.0040361881256103516,
        "fit_transformers": 0.0055310726165771484,
        "load_data": 0.7762744426727295,
    },
    "metrics": {
        "val_loss": [466.7846987884824, 270.62497643196934, 15.611931527015006, 15.748360737715617],
        "val_mean_absolute_error": [19.182923175320767, 13.976237391481305, 2.6988475724021987, 2.6569605841495023],
        "test_loss": [22.415260909807564],
        "loss": [516.9505325166306, 351.41469722533776, 9.36743452210631, 9.180129478473475],
        "mean_absolute_error": [20.776301922184405, 16.260077253033227, 2.2440381042241264, 2.2286516313899076],
        "test_mean_absolute_error": [2.991008189645144],
    },
}

SEED_LOG = """\
2019-04-08 06:16:29,724 - gymnosd - INFO - Main - Starting gymnos environment ...
2019-04-08 06:16:29,725 - gymnosd - INFO - Model - Building Keras model from network specification
2019-04-08 06:16:31,749 - gymnosd - INFO - Trainer - Running experiment: 06-16-31__08-04-2019 ...
2019-04-08 06:16:34,167 - gymnosd - INFO - Trainer - Fitting model with 303 samples ...
2019-04-08 06:16:36,506 - gymnosd - DEBUG - Trainer - Fitting model took 2.34s
2019-04-08 06:16:46,892 - gymnosd - INFO - Trainer - Logging test metrics
2019-04-08 06:16:47,376 - gymnosd - INFO - Trainer - Saving model
"""

SEED_CHECKPOINTS = ("weights.05-27.07.h5", "weights.10-17.55.h5", "weights.15-16.03.h5")
DEFAULT = object()


def write_execution(
    root, name="06-16-31__08-04-2019", dataset="boston_housing", config=DEFAULT, metrics=DEFAULT, log=SEED_LOG
):
    """An execution folder in the seed's layout; pass None to leave a file out, bytes to write them as is."""
    folder = root / dataset / "executions" / name
    (folder / "callbacks" / "model_checkpoint").mkdir(parents=True)
    for checkpoint in SEED_CHECKPOINTS:
        (folder / "callbacks" / "model_checkpoint" / checkpoint).write_bytes(b"\x89HDF fake weights")
    (folder / "model.h5").write_bytes(b"\x89HDF fake model")
    files = {
        "training_config.json": seed_config() if config is DEFAULT else config,
        "metrics.json": SEED_METRICS if metrics is DEFAULT else metrics,
        "execution.log": log,
    }
    for file_name, content in files.items():
        if content is None:
            continue
        if isinstance(content, str):
            content = content.encode()
        elif not isinstance(content, bytes):
            content = json.dumps(content, indent=4).encode()
        (folder / file_name).write_bytes(content)
    return folder


# 15 epochs, so the seed's checkpoints (epochs 5, 10 and 15) fall on the val_loss chart.
LONG_METRICS: dict[str, Any] = {
    "elapsed": {"load_data": 0.78, "fit_model": 2.34, "evaluate_model": 0.004},
    "hardware": {
        "cpu": {"model": "Test CPU 9000", "logical_cores": 8},
        "memory_bytes": 17179869184,
        "gpus": [],
        "python": "3.11.9",
    },
    "metrics": {
        "loss": [100.0 / (epoch + 1) for epoch in range(15)],
        "val_loss": [120.0 / (epoch + 1) for epoch in range(15)],
        "mean_absolute_error": [10.0 / (epoch + 1) for epoch in range(15)],
        "val_mean_absolute_error": [12.0 / (epoch + 1) for epoch in range(15)],
        "test_loss": [9.5],
        "test_mean_absolute_error": [2.5],
    },
}


def make_run(root, name, metrics=LONG_METRICS, config=None, dataset="boston_housing", owner=None, **fields):
    """An execution folder in the seed layout, synced into the index; returns the Execution."""
    write_execution(root, name=name, dataset=dataset, metrics=metrics, config=config or seed_config())
    sync_trainings(root)
    execution = Execution.objects.select_related("experiment").get(experiment__name=dataset, folder_name=name)
    if owner is not None or fields:
        fields.setdefault("launched_by", owner)
        Execution.objects.filter(pk=execution.pk).update(**fields)
        execution.refresh_from_db()
    return execution


def permalink(execution):
    return f"/experiments/{execution.experiment.name}/executions/{execution.folder_name}/"


def login(user):
    client = Client()
    client.force_login(user)
    return client
