"""Configs for tests: the seed's example, and tiny copies of it that train in a second or two."""

import copy
import json
import os
from pathlib import Path

from django.core.management import call_command

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
    # A state kept every epoch, as the tests of resuming count on: the default, "auto", keeps one every few epochs
    # when epochs are as short as these (tests/test_resume_trackers.py tests it).
    config["training"]["resume_every"] = 1
    config["training"]["callbacks"] = list(callbacks)
    config["tracking"]["trackers"] = list(trackers)
    return config


def token_for(user, capsys):
    """A new API token for ``user``, as ``manage.py api_token`` prints it."""
    call_command("api_token", user.username)
    return capsys.readouterr().out.strip()


def stack_env(folder, **extra):
    """The environment of a ``manage.py up`` of its own under ``folder``: the embedded Redis and SQLite,
    its trainings and cache, the tests' hooks allowed; ``extra`` on top."""
    env = {key: value for key, value in os.environ.items() if key not in {"REDIS_URL", "DATABASE_URL"}}
    env.update(
        GYMNOS_VAR_DIR=str(folder / "var"),
        GYMNOS_TRAININGS_ROOT=str(folder / "trainings"),
        GYMNOS_CACHE_DIR=str(folder / "cache"),
        GYMNOS_CALLBACK_MODULES="tests.hooks",
        PYTHONUNBUFFERED="1",
        GYMNOS_RESUME_ATTEMPTS="0",  # a killed worker's run fails, as these tests expect (tests/test_resume.py)
    )
    # Not niced: beside the other test pass's trainings, a niced session group gets a tenth of a core's share and
    # the tests waiting for its epochs time out. tests/test_up.py checks the nice with a value of its own.
    env.update({"GYMNOS_WORKER_NICE": "0", **extra})
    return env
