"""Shared fixtures: throwaway trainings and cache folders, and a tiny config."""
import pytest

from tests.helpers import tiny
from tests.workers import flush, queues_at


@pytest.fixture
def trainings(tmp_path):
    return tmp_path / "trainings"


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "cache"


@pytest.fixture
def tiny_config():
    return tiny()


@pytest.fixture
def real_queues(settings):
    """The RQ queues on the test Redis (127.0.0.1:6379 db 13), empty before and after the test."""
    settings.RQ_QUEUES = queues_at()
    flush()
    yield
    flush()
