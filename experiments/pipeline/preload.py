"""The warm-up: what a process that trains imports once, before its first run.

``manage.py train`` calls it before building the model; the RQ worker calls it before it forks
a work horse per job (``experiments.jobs.worker``), adding its own job modules. Both pay Python's
garbage collector nothing for it (``gcpause``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable

import numpy as np

from . import network
from .gcpause import paused_collector

# The frameworks a run uses and the engine modules that import them, in the order they load.
WARM_UP = (
    "h5py",
    "keras",
    "sklearn.preprocessing",
    "sklearn.decomposition",
    "experiments.pipeline.keras_callbacks",
    "experiments.pipeline.build_check",
    "experiments.pipeline.trainer",
)


def import_frameworks(also: Iterable[str] = ()) -> None:
    """Import ``WARM_UP`` (and ``also``) and build the engine's lookup tables, collector paused.

    The first call in a process freezes what the imports built. Where Keras is already imported
    (a test session) nothing is frozen, so a long-lived process never freezes its later work.
    """
    names = [*WARM_UP, *also]
    if "keras" in sys.modules:
        for name in names:
            importlib.import_module(name)
        return
    with paused_collector():
        for name in names:
            importlib.import_module(name)

        # Lookup tables, built once per process and kept for good; pure Python, safe to share with forks.
        # (Not the device list: probing GPUs starts CUDA, which a forked work horse could not use.)
        network.layer_classes()
        network.optimizer_classes()
        _fit_a_scaler()


def _fit_a_scaler() -> None:
    """Fit and apply a scaler to two numbers: scikit-learn fills its caches on the first fit of a process
    (its config, its input checks), 15-20 ms that each forked run would otherwise pay again. Pure
    Python and NumPy: nothing here is unsafe to fork."""
    from sklearn.preprocessing import StandardScaler

    StandardScaler().fit(np.zeros((2, 1))).transform(np.zeros((2, 1)))
