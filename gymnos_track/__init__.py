"""Track any training script as a Gymnos run, offline first: the client writes the seed's execution folder.

    import gymnos_track

    with gymnos_track.start(experiment="mnist_torch", config={"lr": 0.01}, tags=["baseline"]) as run:
        for epoch in range(10):
            run.log({"loss": train_one_epoch(), "val_loss": validate()}, epoch=epoch)
        run.log_artifact("model.pt")
    gymnos_track.push("trainings", server="https://gymnos.example", token="...")  # later, anywhere

Plain Python: importing it imports neither Django nor TensorFlow, Keras or torch (``KerasCallback``
and ``run.keras_callback()`` import Keras when first asked for).
"""

from __future__ import annotations

from typing import Any

from .layout import create_execution_dir, metric_name_problem
from .push import PushError, PushReport, push
from .run import Run, TrackError, start

__all__ = [
    "start",
    "Run",
    "TrackError",
    "push",
    "PushError",
    "PushReport",
    "KerasCallback",
    "create_execution_dir",
    "metric_name_problem",
]


def __getattr__(name: str) -> Any:
    if name == "KerasCallback":  # defined on first use, so importing the client does not import Keras
        from .keras import KerasCallback

        return KerasCallback
    raise AttributeError(f"module 'gymnos_track' has no attribute {name!r}")
