"""Configs for tests: the seed's example, and tiny copies of it that train in a second or two."""

import copy
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED_EXAMPLE = ROOT / "examples" / "boston_housing.json"


def seed_config():
    """The seed document's Boston Housing config, exactly as it is in examples/."""
    return json.loads(SEED_EXAMPLE.read_text())


def tiny(config=None, epochs=2, trackers=(), callbacks=()):
    """A copy of ``config`` (default: the seed's) shrunk to train in about a second."""
    config = copy.deepcopy(config or seed_config())
    config["model"]["network"] = [
        {"type": "dense", "units": 8, "activation": "relu"},
        {"type": "dense", "units": 1, "activation": "linear"},
    ]
    config["training"]["epochs"] = epochs
    config["training"]["callbacks"] = list(callbacks)
    config["tracking"]["trackers"] = list(trackers)
    return config
