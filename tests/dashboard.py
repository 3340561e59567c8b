"""Fixtures for the dashboard's view tests: the actors, and real execution folders, indexed.

Actors: ``owner`` may launch and cancel (experiments.add_execution) and made the runs;
``teammate`` is another logged-in user without that permission; ``outsider`` is a client
that is not logged in. Import the fixtures a module uses:
``from tests.dashboard import owner, teammate, outsider, trained  # noqa: F401``.
"""

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from experiments.models import Execution
from experiments.sync import sync_trainings
from tests.helpers import seed_config
from tests.test_sync import SEED_METRICS, write_execution

# 15 epochs, so the seed's checkpoints (epochs 5, 10 and 15) fall on the val_loss chart.
LONG_METRICS = {
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


def login(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def owner(db):
    user = User.objects.create_user("olivia", password="pw-olivia-123")
    user.user_permissions.add(Permission.objects.get(codename="add_execution"))
    return user


@pytest.fixture
def teammate(db):
    return User.objects.create_user("tom", password="pw-tom-123")


@pytest.fixture
def owner_client(owner):
    return login(owner)


@pytest.fixture
def teammate_client(teammate):
    return login(teammate)


@pytest.fixture
def outsider():
    return Client()


@pytest.fixture
def root(tmp_path, settings):
    """The trainings root the dashboard reads (settings point at it)."""
    root = tmp_path / "trainings"
    root.mkdir()
    settings.GYMNOS_TRAININGS_ROOT = root
    return root


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


@pytest.fixture
def trained(root, owner):
    """A finished run with 15 epochs and the seed's three checkpoints."""
    return make_run(root, "06-16-31__08-04-2019", owner=owner)


@pytest.fixture
def seed_run(root, owner):
    """The seed's own example folder (4 epochs), as documented."""
    return make_run(root, "06-39-51__10-04-2019", metrics=SEED_METRICS, owner=owner)


def permalink(execution):
    return f"/experiments/{execution.experiment.name}/executions/{execution.folder_name}/"
